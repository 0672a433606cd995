// Package blobstore is cairn's content store: files kept by their sha256,
// shared by the applier (package steps), which keeps there every input a
// move applies and every before-image's content, and by the agent, whose
// compiler writes rendered content straight into it.
//
// # Use
//
//  1. [Open] the store in a directory (made if missing), or [OpenExisting]
//     to read one that may not be there.
//  2. Put content: [Store.Put] from a reader, [Store.PutBlob] from bytes
//     whose sum the caller knows (the compiler's interface), or
//     [Store.PutFile] from a file on disk. Each checks the content against
//     the sha256 it is given, and stores nothing on a mismatch
//     ([HashMismatchError]).
//  3. [Store.Has] and [Store.Open] a blob by its sha256, or read the store
//     as a file system of blobs named by their sha256 ([Store.FS]); reading
//     checks the hash again, and a corrupt blob fails the read and is
//     forgotten.
//  4. [Store.Sync] makes what was put durable and visible to other
//     processes; [Store.Close] syncs and closes.
//
// Small blobs are appended to packs with an index of fixed-size records,
// large ones are files of their own (see [Store] for the layout and how a
// crash is survived). Only one process may write a store at a time: the
// caller holds a lock (the state lock of package steps).
//
// The files of the store are opened as cairn's state files are
// ([statedir.OpenFile]): never through a link, never a FIFO or a device.
package blobstore
