package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The real deployment files.

func TestManifests(t *testing.T) {
	if err := Manifests("../k8s"); err != nil {
		t.Fatalf("deploy/k8s:\n%v", err)
	}
}

func TestCompose(t *testing.T) {
	if err := Compose("../compose.yaml"); err != nil {
		t.Fatalf("deploy/compose.yaml:\n%v", err)
	}
}

func TestDockerfile(t *testing.T) {
	if err := Dockerfile("../Dockerfile"); err != nil {
		t.Fatalf("deploy/Dockerfile:\n%v", err)
	}
}

// The validator must reject broken files; each case breaks one thing in a
// copy of the real manifests.

func TestManifestsRejectBrokenCopies(t *testing.T) {
	tests := []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "serve.yaml", "readinessProbe:", "readynessProbe:", `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{"wrong case", "worker.yaml", "containerPort: 9090", "ContainerPort: 9090", "unknown field"},
		{"wrong type", "serve.yaml", "replicas: 2", "replicas: two", "cannot unmarshal"},
		{"duplicate key", "serve.yaml", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", `key "replicas" already set`},
		{"unknown kind", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "unknown kind"},
		{"old api version", "pdb.yaml", "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n", "unknown kind"},
		{"missing liveness probe", "worker.yaml", "          livenessProbe:", "          startupProbe:", "livenessProbe is required"},
		{"probe on a port that does not exist", "serve.yaml", "path: /readyz\n              port: http", "path: /readyz\n              port: web", "not a port of the container"},
		{"selector mismatch", "worker.yaml", "    matchLabels:\n      app.kubernetes.io/name: webcaresync\n      app.kubernetes.io/component: worker", "    matchLabels:\n      app.kubernetes.io/name: webcaresync\n      app.kubernetes.io/component: workers", "does not match"},
		{"service selects nothing", "serve.yaml", "  selector:\n    app.kubernetes.io/name: webcaresync\n    app.kubernetes.io/component: serve\n  ports:", "  selector:\n    app.kubernetes.io/name: webcaresync\n    app.kubernetes.io/component: edge\n  ports:", "matches no Deployment"},
		{"no memory limit", "worker.yaml", "              memory: 1Gi\n", "", "limits for memory are required"},
		{"request above limit", "serve.yaml", "cpu: 100m", "cpu: 1500m", "request exceeds its limit"},
		{"root allowed", "serve.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot must be true"},
		{"wrong namespace", "configmap.yaml", "namespace: webcaresync", "namespace: default", "metadata.namespace must be webcaresync"},
		{"missing config map", "worker.yaml", "name: webcaresync-config\n          readinessProbe", "name: webcaresync-cfg\n          readinessProbe", "ConfigMap webcaresync-cfg is not defined"},
		{"inline secret in config map", "configmap.yaml", "WEBCARESYNC_LOG_LEVEL: info", "WEBCARESYNC_LOG_LEVEL: info\n  WEBCARESYNC_GENERIC_SECRET: hunter2", "looks like a secret"},
		{"latest image", "serve.yaml", "image: webcaresync/webcaresync:0.1.0", "image: webcaresync/webcaresync:latest", "version tag"},
		{"bad name", "namespace.yaml", "name: webcaresync", "name: Webcare_Sync", "metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, "../k8s")
			path := filepath.Join(dir, tt.file)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), tt.old) {
				t.Fatalf("%s does not contain %q; update the test", tt.file, tt.old)
			}
			broken := strings.Replace(string(raw), tt.old, tt.new, 1)
			if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
				t.Fatal(err)
			}
			err = Manifests(dir)
			if err == nil {
				t.Fatalf("broken manifest passed validation")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestManifestsRejectUnlistedFile(t *testing.T) {
	dir := copyDir(t, "../k8s")
	extra := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: webcaresync\n"
	if err := os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Manifests(dir)
	if err == nil || !strings.Contains(err.Error(), "extra.yaml is not listed") {
		t.Fatalf("got %v", err)
	}
}

func TestComposeRejectsBrokenCopies(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown service key", "    restart: unless-stopped\n    environment:\n      POSTGRES_USER", "    restart: unless-stopped\n    enviroment:\n      POSTGRES_USER", "enviroment"},
		{"inline secret", "WEBCARESYNC_LOG_FORMAT: json", "WEBCARESYNC_LOG_FORMAT: json\n  WEBCARESYNC_GENERIC_SECRET: hunter2", "holds a secret inline"},
		{"password in database url", "postgres://webcaresync@postgresql", "postgres://webcaresync:hunter2@postgresql", "carries a password"},
		{"worker without health check", "      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:9090/healthz\"]", "      disable: true", "health check is required"},
		{"serve runs worker", "command: [\"serve\",", "command: [\"worker\",", `must start with "serve"`},
		{"undefined secret", "    - salesforce_client_secret\n  depends_on:", "    - salesforce_client_secret\n    - nope\n  depends_on:", "nope"},
		{"bad healthcheck interval", "interval: 5s", "interval: soon", "interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile("../compose.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), tt.old) {
				t.Fatalf("compose.yaml does not contain %q; update the test", tt.old)
			}
			dir := copyDir(t, "..", "compose.yaml", "webcaresync.yaml")
			path := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(raw), tt.old, tt.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			err = Compose(path)
			if err == nil {
				t.Fatalf("broken compose file passed validation")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestDockerfileRejectsRoot(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Dockerfile")
	broken := strings.Replace(string(raw), "USER 10001:10001", "USER root", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Dockerfile(path); err == nil || !strings.Contains(err.Error(), "non-root USER") {
		t.Fatalf("got %v", err)
	}
}

// copyDir copies the named files of src (all regular files when none are
// named) into a new temporary directory.
func copyDir(t *testing.T, src string, names ...string) string {
	t.Helper()
	dst := t.TempDir()
	if len(names) == 0 {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
