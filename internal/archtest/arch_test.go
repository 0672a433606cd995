package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cairn-cm/cairn"

// allowed lists, for each package of ours, the packages of ours and the
// outside modules it may import; the standard library is always allowed.
var allowed = map[string][]string{
	"journal":             {"github.com/sergi/go-diff"},
	"rootfs":              {"golang.org/x/sys"},
	"internal/atomicfile": {},
	"blobstore":           {"statedir", "internal/atomicfile", "golang.org/x/sys"},
	"steps":               {"journal", "rootfs", "statedir", "blobstore", "internal/atomicfile", "golang.org/x/sys"},
	"statedir":            {"rootfs", "internal/atomicfile", "golang.org/x/sys"},
	"debian":              {},
	"systemd":             {"github.com/coreos/go-systemd"}, // its dbus package brings github.com/godbus/dbus, not imported directly
	"compiler":            {"journal", "steps", "blobstore", "compiler/syntax", "internal/treefs", "github.com/alecthomas/participle"},
	"compiler/syntax":     {"github.com/alecthomas/participle"},
	"agent": {"compiler", "steps", "blobstore", "journal", "rootfs", "systemd",
		"agent/gitfs", "agent/metrics", "agent/mirror", "agent/selfexe", "agent/status", "agent/trust", "agent/web",
		"github.com/go-git/go-git", "github.com/prometheus/client_golang"},
	"agent/trust":          {"github.com/go-git/go-git", "github.com/ProtonMail/go-crypto", "github.com/hiddeco/sshsig", "golang.org/x/crypto"},
	"agent/gitfs":          {"internal/treefs", "github.com/go-git/go-git", "github.com/go-git/go-billy"},
	"agent/status":         {},
	"agent/selfexe":        {},
	"agent/metrics":        {"github.com/prometheus/client_golang"},
	"agent/fleet":          {"github.com/prometheus/client_golang", "github.com/prometheus/common"},
	"agent/web":            {"agent/status", "github.com/prometheus/client_golang", "github.com/prometheus/exporter-toolkit"},
	"agent/promote":        {"agent/fleet", "agent/gitfs", "agent/mirror", "compiler", "journal", "github.com/go-git/go-git"},
	"agent/mirror":         {"github.com/go-git/go-git", "github.com/go-git/go-billy", "golang.org/x/crypto"}, // x/crypto: ssh, which go-git's transport cannot cancel
	"internal/treefs":      {"golang.org/x/sys"},
	"internal/cli":         {"*"},
	"cmd/cairn":            {"internal/cli"},
	"internal/clidoc":      {"github.com/alecthomas/kong"},
	"packaging/deb":        {"internal/cli", "internal/clidoc", "github.com/alecthomas/kong"}, // generates the package's manual pages, completions, settings file
	"internal/archtest":    {},
	"internal/debroot":     {},                                          // tests only: a Debian root to run apt in
	"internal/gittest":     {},                                          // tests only: repositories made with git
	"internal/testhost":    {"internal/debroot"},                        // tests only: hosts with systemd as PID 1
	"internal/testcert":    {},                                          // tests only: TLS certificates
	"internal/promtest":    {"internal/gittest"},                        // tests only: a real Prometheus server
	"internal/browsertest": {"internal/gittest", "github.com/chromedp"}, // tests only: pages loaded in Chromium
	"examples":             {},                                          // tests only: the example configurations compile
	"docs":                 {},                                          // tests only: the tutorial's commands run in systemd test hosts
}

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImports(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasPrefix(rel, "bench") {
			continue // benchmark programs are not part of cairn
		}
		rules, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s has no row in the import rules of this test", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // standard library
			}
			if !permitted(imp, rules) {
				t.Errorf("%s imports %s, which design.md does not allow", rel, imp)
			}
		}
	}
}

func permitted(imp string, rules []string) bool {
	for _, r := range rules {
		if r == "*" {
			return true
		}
		full := r
		if !strings.Contains(strings.SplitN(r, "/", 2)[0], ".") {
			full = module + "/" + r
		}
		if imp == full || strings.HasPrefix(imp, full+"/") || strings.HasPrefix(imp, full) && strings.HasPrefix(imp[len(full):], "/v") {
			return true
		}
	}
	return false
}

func TestEveryPackageHasADoc(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}
