package impair

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// importPath is the command's package, built by Build.
const importPath = "github.com/ftbridge/ftbridge/integration/impair/cmd/impair"

// Build compiles the impair command into dir and returns the binary's path.
// It needs the go tool (go test puts its own first on PATH) and this
// module's source: the build runs in the directory this file was compiled
// from when it still exists, otherwise in the current directory, which must
// then lie inside the module. Tests that build several labs should call it
// once (e.g. in TestMain) and pass the path to each lab.
func Build(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		root := os.Getenv("GOROOT")
		if root == "" {
			return "", fmt.Errorf("impair: no go tool on PATH to build the impair command: %w", err)
		}
		goTool = filepath.Join(root, "bin", "go")
	}
	out := filepath.Join(dir, "impair")
	cmd := exec.Command(goTool, "build", "-o", out, importPath)
	// The package's own source directory is inside the module wherever the
	// caller runs from (a test's working directory is its package).
	if _, file, _, ok := runtime.Caller(0); ok {
		if st, err := os.Stat(filepath.Dir(file)); err == nil && st.IsDir() {
			cmd.Dir = filepath.Dir(file)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("impair: go build %s: %w: %s", importPath, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
