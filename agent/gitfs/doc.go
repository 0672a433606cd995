// Package gitfs reads the files of a git commit straight from the
// repository's objects, as an [io/fs.FS], without a checkout and without
// touching the work tree or the index.
//
// It serves `cairn journal diff --repo DIR REV1 REV2`, which compiles the
// configuration at two revisions side by side, and the agent, which compiles
// the commit it has fetched before it applies it.
//
// # Use
//
//  1. [Open] the repository: the top of a work tree (with a .git directory,
//     or a .git file as in a submodule or a linked work tree) or a bare
//     repository.
//  2. [Repo.Resolve] a revision (branch, tag, full or abbreviated hash,
//     HEAD, HEAD~1, main^, ...) to a commit hash, or go straight to
//     [Repo.FS], which resolves and returns the commit's tree as a file
//     system.
//  3. Read it with the io/fs functions: fs.ReadFile, fs.ReadDir, fs.Stat,
//     fs.WalkDir, fs.Glob, fs.ReadLink, fs.Lstat.
//  4. [Repo.Close] the repository when done with every file system it gave.
//
// # What the file system shows
//
//   - Regular files have mode 0644, executables 0755, directories
//     fs.ModeDir|0755 and symbolic links fs.ModeSymlink|0777. Every
//     modification time is the committer time of the commit. Sys returns an
//     [*Object] with the git object's hash and mode.
//   - Open, Stat, ReadFile and ReadDir follow symbolic links, in the path and
//     at its end, as long as the target stays inside the tree; a link that
//     is absolute or climbs out of the tree is an error, and so is a chain of
//     more than 40 links. Lstat and ReadLink (fs.ReadLinkFS) do not follow the
//     last element; ReadDir reports links as links, so fs.WalkDir does not
//     descend through them.
//   - A submodule (a gitlink entry) is a directory holding the tree of the
//     pinned commit. Its repository is looked for, in this order, in
//     GITDIR/modules/NAME, where NAME comes from .gitmodules at that commit
//     of the superproject (the path when .gitmodules does not name it), then
//     for a linked work tree in the common git directory's modules/NAME,
//     then in WORKTREE/PATH/.git (a .git directory or a .git file).
//     Submodules nest. When no repository holds the pinned commit, opening or listing
//     anything under it fails with an error that names the submodule's path
//     and commit and wraps [ErrSubmoduleUnavailable]; Stat and ReadDir of
//     its parent still show it as a directory.
//   - Names that are not valid fs paths (fs.ValidPath) give an
//     *fs.PathError wrapping fs.ErrInvalid; missing names, and paths through
//     something that is not a directory, wrap fs.ErrNotExist.
//   - Tree entries whose names could not be a file name (empty, ".", "..",
//     containing a slash or a NUL) are left out.
//
// # Cost and concurrency
//
// A Repo and every file system it returns may be used from many goroutines
// at once. All access to git objects of one repository goes through one
// mutex, so reads of one repository are serialised, while the path lookups
// around them are not: each file system caches its directories by path, and
// the Repo caches parsed trees by hash (so two revisions share the
// directories they have in common) and blob sizes. A file's whole content is
// read into memory when it is opened.
//
// The file system also gives a file's SHA-256 (Sum256, the compiler's
// SumFS). Sums are kept by repository and blob id, in every Repo of that
// repository alike, as long as they are asked for (the last 16,384 to
// 32,768 blobs, some 3 MiB at the most): the agent, which
// compiles each new commit of a repository it opens afresh for every run,
// reads and hashes only the blobs that the commit changed, not the tens of
// megabytes its COPY steps name. go-git's cache of decoded objects is
// bounded to 16 MiB a Repo.
package gitfs
