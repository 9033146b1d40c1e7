package validate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// ComposeEnv is the environment the compose file is interpolated with
// during validation: the values deploy/.env would hold.
var ComposeEnv = map[string]string{
	"SALESFORCE_CLIENT_ID": "validation-client-id",
}

// Compose loads path with compose-go, the library Docker Compose uses,
// with schema validation and consistency checks on, then checks the
// services the production split needs.
func Compose(path string) error {
	p, err := LoadCompose(path)
	if err != nil {
		return err
	}
	return CheckCompose(p)
}

// LoadCompose loads and schema-validates one compose file.
func LoadCompose(path string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: raw}},
		Environment: types.Mapping(ComposeEnv),
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("webcaresync", true)
		o.ResolvePaths = true
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// CheckCompose applies our rules to a loaded project.
func CheckCompose(p *types.Project) error {
	var errs []error
	fail := func(svc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("compose service %s: %s", svc, fmt.Sprintf(format, args...)))
	}
	need := []string{"postgresql", "temporal", "temporal-ui", "serve", "worker"}
	for _, name := range need {
		if _, ok := p.Services[name]; !ok {
			errs = append(errs, fmt.Errorf("compose: service %s is missing", name))
		}
	}
	if t, ok := p.Services["temporal"]; ok {
		if !strings.HasPrefix(t.Image, "temporalio/server:") && !strings.HasPrefix(t.Image, "temporalio/auto-setup:") {
			fail("temporal", "image must be temporalio/server or temporalio/auto-setup, got %q", t.Image)
		}
		if env := t.Environment["DB"]; env == nil || !strings.HasPrefix(*env, "postgres") {
			fail("temporal", "DB must select PostgreSQL (postgres12)")
		}
	}
	for name, cmd := range map[string]string{"serve": "serve", "worker": "worker"} {
		s, ok := p.Services[name]
		if !ok {
			continue
		}
		if len(s.Command) == 0 || s.Command[0] != cmd {
			fail(name, "command must start with %q", cmd)
		}
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			fail(name, "must build deploy/Dockerfile")
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			fail(name, "a health check is required")
		} else {
			test := strings.Join(s.HealthCheck.Test, " ")
			want := []string{"/healthz"}
			if name == "serve" {
				want = append(want, "/readyz")
			} else {
				want = []string{":9090/healthz"}
			}
			for _, w := range want {
				if !strings.Contains(test, w) {
					fail(name, "health check must call %s", w)
				}
			}
		}
		for _, key := range []string{"WEBCARESYNC_TEMPORAL_ADDRESS", "WEBCARESYNC_DATABASE_URL", "WEBCARESYNC_MASTER_KEY_FILE", "WEBCARESYNC_PEPPER_FILE"} {
			if v := s.Environment[key]; v == nil || *v == "" {
				fail(name, "environment %s is required", key)
			}
		}
		if v := s.Environment["WEBCARESYNC_DATABASE_URL"]; v != nil && strings.Contains(strings.SplitN(strings.TrimPrefix(*v, "postgres://"), "@", 2)[0], ":") {
			fail(name, "WEBCARESYNC_DATABASE_URL carries a password; use PGPASSFILE with a secret")
		}
		for _, sec := range s.Secrets {
			if _, ok := p.Secrets[sec.Source]; !ok {
				fail(name, "secret %s is not defined", sec.Source)
			}
		}
		if _, ok := s.DependsOn["temporal-namespace"]; !ok {
			fail(name, "must depend on temporal-namespace (namespace and search attributes)")
		}
	}
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil && *v != "" && looksSecret(k) && !strings.HasPrefix(*v, "/run/secrets/") {
				fail(name, "environment %s holds a secret inline; use a secret file", k)
			}
		}
	}
	for name, sec := range p.Secrets {
		if sec.File == "" {
			errs = append(errs, fmt.Errorf("compose secret %s: must be read from a file", name))
		}
	}
	return errors.Join(errs...)
}

// Dockerfile checks the structure of webcaresync's Dockerfile: a build
// stage that builds ./cmd/webcaresync and a runtime stage that runs as a
// non-root user with webcaresync as its entrypoint.
func Dockerfile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var stages int
	var builds, entry bool
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			stages++
			user = "" // USER does not carry over between stages
			entry = false
		case "RUN":
			if strings.Contains(line, "go build") && strings.Contains(line, "./cmd/webcaresync") {
				builds = true
			}
		case "USER":
			if len(fields) > 1 {
				user = fields[1]
			}
		case "ENTRYPOINT":
			entry = strings.Contains(line, "webcaresync")
		}
		// Continuation lines of a RUN are joined loosely: look ahead.
		if strings.HasSuffix(line, "\\") {
			for sc.Scan() {
				next := strings.TrimSpace(sc.Text())
				if strings.Contains(next, "go build") && strings.Contains(next, "./cmd/webcaresync") {
					builds = true
				}
				if !strings.HasSuffix(next, "\\") {
					break
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var errs []error
	if stages < 2 {
		errs = append(errs, errors.New("Dockerfile: want a multi-stage build (build and runtime)"))
	}
	if !builds {
		errs = append(errs, errors.New("Dockerfile: no RUN builds ./cmd/webcaresync with go build"))
	}
	if u := strings.SplitN(user, ":", 2)[0]; u == "" || u == "root" || u == "0" {
		errs = append(errs, errors.New("Dockerfile: the runtime stage must set a non-root USER"))
	}
	if !entry {
		errs = append(errs, errors.New("Dockerfile: the runtime stage's ENTRYPOINT must run webcaresync"))
	}
	return errors.Join(errs...)
}
