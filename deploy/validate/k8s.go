// Package validate checks webcaresync's deployment files offline: the
// Kubernetes manifests are decoded strictly into the typed k8s.io/api
// objects (unknown or misspelt fields, wrong types and duplicate keys are
// errors) and then checked for what our deployment needs (probes, limits,
// non-root, consistent selectors and references); compose.yaml is loaded
// and schema-validated with compose-go, the library Docker Compose itself
// uses; the Dockerfile gets a few structural checks.
//
// It is its own Go module so that the product's `go test ./...` neither
// builds nor downloads it. Run it with deploy/validate.sh.
package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	strictjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Namespace is the namespace every namespaced object must be in.
const Namespace = "webcaresync"

// scheme knows the kinds our manifests may use. Anything else is an error,
// so a typo in apiVersion or kind cannot slip through unchecked.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// Object is one decoded manifest document and where it came from.
type Object struct {
	Source string // file:document
	GVK    schema.GroupVersionKind
	Obj    runtime.Object
}

// kustomization is the subset of kustomize's Kustomization we use; decoding
// is strict, so any other field is reported.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
}

// Manifests validates every *.yaml file in dir and returns all problems
// found, one per line.
func Manifests(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no manifests in %s", dir)
	}
	sort.Strings(files)
	var errs []error
	var objs []Object
	var kust *kustomization
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if filepath.Base(f) == "kustomization.yaml" {
			k, err := decodeKustomization(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				continue
			}
			kust = k
			continue
		}
		o, err := DecodeAll(filepath.Base(f), raw)
		errs = append(errs, err)
		objs = append(objs, o...)
	}
	errs = append(errs, Check(objs))
	if kust == nil {
		errs = append(errs, errors.New("kustomization.yaml is missing"))
	} else {
		errs = append(errs, checkKustomization(kust, dir, files))
	}
	return errors.Join(errs...)
}

// DecodeAll strictly decodes every document of one YAML file.
func DecodeAll(name string, raw []byte) ([]Object, error) {
	var out []Object
	var errs []error
	r := k8syaml.NewYAMLReader(bufioReader(raw))
	for doc := 1; ; doc++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", name, doc, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(chunk))) == 0 {
			continue
		}
		src := fmt.Sprintf("%s:%d", name, doc)
		o, err := Decode(src, chunk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// Decode strictly decodes one YAML document into its typed object.
func Decode(src string, doc []byte) (Object, error) {
	// YAMLToJSONStrict rejects duplicate keys.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", src, err)
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := strictjson.UnmarshalCaseSensitivePreserveInts(js, &meta); err != nil {
		return Object{}, fmt.Errorf("%s: %w", src, err)
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil || meta.APIVersion == "" || meta.Kind == "" {
		return Object{}, fmt.Errorf("%s: apiVersion and kind are required (got %q, %q)", src, meta.APIVersion, meta.Kind)
	}
	gvk := gv.WithKind(meta.Kind)
	obj, err := scheme.New(gvk)
	if err != nil {
		return Object{}, fmt.Errorf("%s: unknown kind %s: %w", src, gvk, err)
	}
	strictErrs, err := strictjson.UnmarshalStrict(js, obj)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %s: %w", src, gvk.Kind, err)
	}
	if len(strictErrs) > 0 {
		return Object{}, fmt.Errorf("%s: %s: %w", src, gvk.Kind, errors.Join(strictErrs...))
	}
	return Object{Source: src, GVK: gvk, Obj: obj}, nil
}

func decodeKustomization(raw []byte) (*kustomization, error) {
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, err
	}
	var k kustomization
	strictErrs, err := strictjson.UnmarshalStrict(js, &k)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, errors.Join(strictErrs...)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("want apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization")
	}
	return &k, nil
}

// checkKustomization makes sure every manifest is listed and every listed
// file exists, so that `kubectl apply -k` applies exactly what we checked.
func checkKustomization(k *kustomization, dir string, files []string) error {
	var errs []error
	if k.Namespace != Namespace {
		errs = append(errs, fmt.Errorf("kustomization.yaml: namespace must be %s", Namespace))
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			errs = append(errs, fmt.Errorf("kustomization.yaml: resource %s does not exist", r))
		}
	}
	for _, f := range files {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && !listed[b] {
			errs = append(errs, fmt.Errorf("kustomization.yaml: %s is not listed under resources", b))
		}
	}
	return errors.Join(errs...)
}

// Check applies our deployment rules across all decoded objects.
func Check(objs []Object) error {
	var errs []error
	fail := func(o Object, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s %s: %s", o.Source, o.GVK.Kind, nameOf(o), fmt.Sprintf(format, args...)))
	}
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	var deployments []*appsv1.Deployment
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.GVK.Kind + "/" + nameOf(o)
		if seen[key] {
			fail(o, "defined twice")
		}
		seen[key] = true
		m := metaOf(o)
		for _, msg := range k8svalidation.IsDNS1123Subdomain(m.Name) {
			fail(o, "metadata.name: %s", msg)
		}
		for k, v := range m.Labels {
			for _, msg := range k8svalidation.IsQualifiedName(k) {
				fail(o, "label key %q: %s", k, msg)
			}
			for _, msg := range k8svalidation.IsValidLabelValue(v) {
				fail(o, "label %q value: %s", k, msg)
			}
		}
		if o.GVK.Kind == "Namespace" {
			if m.Namespace != "" {
				fail(o, "a Namespace has no metadata.namespace")
			}
		} else if m.Namespace != Namespace {
			fail(o, "metadata.namespace must be %s", Namespace)
		}
		switch v := o.Obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *corev1.Secret:
			secrets[v.Name] = v
		case *appsv1.Deployment:
			deployments = append(deployments, v)
		}
	}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			for _, msg := range checkDeployment(v, configMaps, secrets) {
				fail(o, "%s", msg)
			}
		case *corev1.Service:
			for _, msg := range checkService(v, deployments) {
				fail(o, "%s", msg)
			}
		case *policyv1.PodDisruptionBudget:
			if v.Spec.Selector == nil || len(v.Spec.Selector.MatchLabels) == 0 {
				fail(o, "spec.selector.matchLabels is required")
			} else if selects(v.Spec.Selector.MatchLabels, deployments) == nil {
				fail(o, "spec.selector matches no Deployment's pods")
			}
			if (v.Spec.MinAvailable == nil) == (v.Spec.MaxUnavailable == nil) {
				fail(o, "set exactly one of minAvailable and maxUnavailable")
			}
		case *networkingv1.NetworkPolicy:
			if len(v.Spec.PodSelector.MatchLabels) == 0 {
				fail(o, "spec.podSelector.matchLabels is required")
			} else if d := selects(v.Spec.PodSelector.MatchLabels, deployments); d == nil {
				fail(o, "spec.podSelector matches no Deployment's pods")
			} else {
				for _, rule := range v.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port != nil && !hasContainerPort(d, *p.Port) {
							fail(o, "ingress port %s is not a port of %s", p.Port.String(), d.Name)
						}
					}
				}
			}
		}
	}
	for _, want := range []string{"webcaresync-serve", "webcaresync-worker"} {
		found := false
		for _, d := range deployments {
			found = found || d.Name == want
		}
		if !found {
			errs = append(errs, fmt.Errorf("Deployment %s is missing", want))
		}
	}
	return errors.Join(errs...)
}

// checkDeployment returns what is wrong with one Deployment.
func checkDeployment(d *appsv1.Deployment, cms map[string]*corev1.ConfigMap, secrets map[string]*corev1.Secret) []string {
	var out []string
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		out = append(out, "spec.selector.matchLabels is required")
	} else if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		out = append(out, "spec.selector does not match spec.template.metadata.labels")
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 1 {
		out = append(out, "spec.replicas must be at least 1")
	}
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		out = append(out, "spec.template.spec.securityContext.runAsNonRoot must be true")
	}
	if len(pod.Containers) == 0 {
		out = append(out, "no containers")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			cm, ok := cms[v.ConfigMap.Name]
			if !ok {
				out = append(out, fmt.Sprintf("volume %s: ConfigMap %s is not defined", v.Name, v.ConfigMap.Name))
			}
			for _, it := range v.ConfigMap.Items {
				if ok && !hasKey(cm.Data, it.Key) {
					out = append(out, fmt.Sprintf("volume %s: ConfigMap %s has no key %s", v.Name, cm.Name, it.Key))
				}
			}
		}
		if v.Secret != nil {
			if _, ok := secrets[v.Secret.SecretName]; !ok {
				out = append(out, fmt.Sprintf("volume %s: Secret %s is not defined", v.Name, v.Secret.SecretName))
			}
		}
	}
	for _, c := range pod.Containers {
		p := "container " + c.Name + ": "
		if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
			out = append(out, p+"image must be set with a version tag (not latest)")
		}
		if len(c.Args) == 0 || (c.Args[0] != "serve" && c.Args[0] != "worker") {
			out = append(out, p+"args must start with serve or worker")
		}
		out = append(out, checkProbe(p+"readinessProbe", c.ReadinessProbe, c)...)
		out = append(out, checkProbe(p+"livenessProbe", c.LivenessProbe, c)...)
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			lim, okL := c.Resources.Limits[res]
			req, okR := c.Resources.Requests[res]
			if !okL || !okR {
				out = append(out, fmt.Sprintf("%sresources.requests and limits for %s are required", p, res))
				continue
			}
			if req.Cmp(lim) > 0 {
				out = append(out, fmt.Sprintf("%s%s request exceeds its limit", p, res))
			}
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			out = append(out, p+"securityContext.allowPrivilegeEscalation must be false")
		}
		for _, e := range c.Env {
			if e.Value != "" && looksSecret(e.Name) {
				out = append(out, fmt.Sprintf("%senv %s holds a secret inline; mount it from a Secret as a file", p, e.Name))
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				cm, ok := cms[ef.ConfigMapRef.Name]
				if !ok {
					out = append(out, fmt.Sprintf("%senvFrom: ConfigMap %s is not defined", p, ef.ConfigMapRef.Name))
					continue
				}
				for k, v := range cm.Data {
					if looksSecret(k) && !strings.HasPrefix(v, "/") {
						out = append(out, fmt.Sprintf("ConfigMap %s: %s looks like a secret; put it in a Secret file", cm.Name, k))
					}
				}
			}
			if ef.SecretRef != nil {
				out = append(out, p+"envFrom a Secret puts secrets in the environment; mount them as files")
			}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				out = append(out, fmt.Sprintf("%svolumeMount %s has no volume", p, m.Name))
			}
		}
	}
	return out
}

// looksSecret reports whether an environment variable name holds a secret
// value rather than the path of a secret file.
func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	if strings.HasSuffix(n, "_FILE") || n == "PGPASSFILE" {
		return false
	}
	for _, w := range []string{"SECRET", "PASSWORD", "TOKEN", "API_KEY", "PRIVATE_KEY", "PEPPER", "MASTER_KEY"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func checkProbe(what string, p *corev1.Probe, c corev1.Container) []string {
	if p == nil {
		return []string{what + " is required"}
	}
	if p.HTTPGet == nil {
		return []string{what + " must be an httpGet probe"}
	}
	var out []string
	if p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz" {
		out = append(out, fmt.Sprintf("%s path %q must be /healthz or /readyz", what, p.HTTPGet.Path))
	}
	if !portOf(c, p.HTTPGet.Port) {
		out = append(out, fmt.Sprintf("%s port %s is not a port of the container", what, p.HTTPGet.Port.String()))
	}
	return out
}

func portOf(c corev1.Container, port intstr.IntOrString) bool {
	for _, cp := range c.Ports {
		if port.Type == intstr.String && cp.Name == port.StrVal {
			return true
		}
		if port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
			return true
		}
	}
	return false
}

func hasContainerPort(d *appsv1.Deployment, port intstr.IntOrString) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		if portOf(c, port) {
			return true
		}
	}
	return false
}

func checkService(s *corev1.Service, deployments []*appsv1.Deployment) []string {
	if len(s.Spec.Selector) == 0 {
		return []string{"spec.selector is required"}
	}
	d := selects(s.Spec.Selector, deployments)
	if d == nil {
		return []string{"spec.selector matches no Deployment's pods"}
	}
	var out []string
	if len(s.Spec.Ports) == 0 {
		out = append(out, "spec.ports is required")
	}
	for _, p := range s.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		if !hasContainerPort(d, target) {
			out = append(out, fmt.Sprintf("port %s: targetPort %s is not a port of %s", p.Name, target.String(), d.Name))
		}
	}
	return out
}

// selects returns the Deployment whose pod labels the selector matches, or
// nil. A selector matching several Deployments returns the first.
func selects(sel map[string]string, deployments []*appsv1.Deployment) *appsv1.Deployment {
	s := labels.SelectorFromSet(sel)
	for _, d := range deployments {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			return d
		}
	}
	return nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

func nameOf(o Object) string { return metaOf(o).Name }

type metaHolder interface {
	GetName() string
	GetNamespace() string
	GetLabels() map[string]string
}

type meta struct {
	Name, Namespace string
	Labels          map[string]string
}

func metaOf(o Object) meta {
	m, ok := o.Obj.(metaHolder)
	if !ok {
		return meta{}
	}
	return meta{Name: m.GetName(), Namespace: m.GetNamespace(), Labels: m.GetLabels()}
}

// stripComments drops YAML comment lines, to tell an empty document from a
// real one.
func stripComments(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
