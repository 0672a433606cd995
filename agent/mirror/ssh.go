package mirror

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// defaultKeys are the private keys looked for in ~/.ssh, in this order, when
// Options.SSHKey is empty.
var defaultKeys = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// openSSH runs service (git-upload-pack or git-receive-pack) on the remote
// host through ssh, with golang.org/x/crypto/ssh (go-git's ssh transport
// cannot be cancelled during its handshake).
func (d *dialer) openSSH(ctx context.Context, r *remote, o *Options, service string) (*streamSession, error) {
	port := r.ep.Port
	if port == 0 {
		port = defaultPorts["ssh"]
	}
	addr := net.JoinHostPort(trimBrackets(r.ep.Host), strconv.Itoa(port))
	cfg, err := sshConfig(r.ep.User, addr, o)
	if err != nil {
		return nil, err
	}
	conn, err := d.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() || err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, addr, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, addr, err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	stderr := &headBuffer{}
	sess.Stderr = stderr
	cmd := service + " " + shellQuote(r.ep.Path)
	if err := sess.Start(cmd); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ssh %s@%s: run %s: %w", cfg.User, addr, cmd, err)
	}
	s := newStreamSession(ctx, stdin, stdout, func() error {
		_ = sess.Close()
		return client.Close()
	})
	s.stderr = stderr
	return s, nil
}

// sshConfig makes the client configuration for user at addr (host:port):
// public-key authentication with one key, and host keys checked against the
// known hosts file.
func sshConfig(userName, addr string, o *Options) (*ssh.ClientConfig, error) {
	if userName == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("no user in the URL, and the current user: %w", err)
		}
		userName = u.Username
	}
	keyFile := o.SSHKey
	if keyFile == "" {
		home, err := homeDir()
		if err != nil {
			return nil, err
		}
		for _, k := range defaultKeys {
			if p := filepath.Join(home, ".ssh", k); fileExists(p) {
				keyFile = p
				break
			}
		}
		if keyFile == "" {
			return nil, fmt.Errorf("no ssh key: none of %s in %s exists", strings.Join(defaultKeys, ", "),
				filepath.Join(home, ".ssh"))
		}
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("ssh key %s: protected by a passphrase, which is not supported", keyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", keyFile, err)
	}
	known := o.KnownHosts
	if known == "" {
		home, err := homeDir()
		if err != nil {
			return nil, err
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	check, err := knownhosts.New(known)
	if err != nil {
		return nil, fmt.Errorf("known hosts (host keys are always checked): %w", err)
	}
	algos, err := hostKeyAlgorithms(check, addr)
	if errors.Is(err, errUnknownHost) {
		return nil, fmt.Errorf("host %s is not in %s, and host keys are always checked", addr, known)
	}
	if err != nil {
		return nil, fmt.Errorf("host key of %s: %w", addr, err)
	}
	return &ssh.ClientConfig{
		User: userName,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(host, remote, key); err != nil {
				return fmt.Errorf("host key of %s (%s) does not match %s: %w", host, key.Type(), known, err)
			}
			return nil
		},
		HostKeyAlgorithms: algos,
	}, nil
}

// errUnknownHost is returned by hostKeyAlgorithms for a host that the known
// hosts file does not name.
var errUnknownHost = errors.New("unknown host")

// hostKeyAlgorithms returns the host key algorithms to ask the server for:
// those of the keys the known hosts file holds for addr, so that a server
// with several host keys shows the one that can be checked. A host that the
// file does not know is an error.
func hostKeyAlgorithms(check ssh.HostKeyCallback, addr string) ([]string, error) {
	// Checking a key that cannot match lists the keys that would.
	err := check(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey())
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil, fmt.Errorf("checking the known hosts: %w", err)
	}
	if len(ke.Want) == 0 {
		return nil, errUnknownHost
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		t := k.Key.Type()
		names := []string{t}
		if t == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos, nil
}

// probeKey is a public key no known hosts file holds.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// homeDir is $HOME, or the home of the current user when it is unset (as
// for a system service).
func homeDir() (string, error) {
	if h := os.Getenv("HOME"); h != "" {
		return h, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("no home directory: %w", err)
	}
	return u.HomeDir, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// shellQuote quotes s for a POSIX shell, as git does for the path it gives
// git-upload-pack through ssh.
func shellQuote(s string) string {
	return "'" + strings.NewReplacer("'", `'\''`, "!", `'\!'`).Replace(s) + "'"
}
