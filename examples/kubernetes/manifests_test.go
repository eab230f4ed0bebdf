// Package kubernetes holds no code: its test checks that the example
// manifests beside it agree with what the executor really reads and serves.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/metrics"
)

// obj is one manifest document.
type obj map[string]any

// get follows a path of map keys and list indexes ("spec", "template", 0).
func (o obj) get(keys ...any) any {
	var cur any = map[string]any(o)
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

func (o obj) str(keys ...any) string {
	switch v := o.get(keys...).(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (o obj) list(keys ...any) []obj {
	l, _ := o.get(keys...).([]any)
	var out []obj
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			out = append(out, obj(m))
		}
	}
	return out
}

func (o obj) strMap(keys ...any) map[string]string {
	m, _ := o.get(keys...).(map[string]any)
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func (o obj) sub(keys ...any) obj {
	m, _ := o.get(keys...).(map[string]any)
	return obj(m)
}

// manifests parses every file matching pattern ("*.yaml": those of this
// directory), all documents.
func manifests(t *testing.T, pattern string) map[string][]obj {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests (%v)", err)
	}
	byKind := map[string][]obj{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(src))
		for i := 1; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			if doc == nil {
				continue
			}
			o := obj(doc)
			if o.str("apiVersion") == "" || o.str("kind") == "" || o.str("metadata", "name") == "" {
				t.Errorf("%s, document %d: no apiVersion, kind or metadata.name", f, i)
				continue
			}
			if o.str("metadata", "namespace") != "" {
				t.Errorf("%s: %s sets a namespace; the examples go wherever kubectl -n puts them", f, o.str("kind"))
			}
			byKind[o.str("kind")] = append(byKind[o.str("kind")], o)
		}
	}
	return byKind
}

// one returns the only object of a kind.
func one(t *testing.T, m map[string][]obj, kind, apiVersion string) obj {
	t.Helper()
	if len(m[kind]) != 1 {
		t.Fatalf("want one %s, have %d", kind, len(m[kind]))
	}
	o := m[kind][0]
	if o.str("apiVersion") != apiVersion {
		t.Errorf("%s apiVersion %s, want %s", kind, o.str("apiVersion"), apiVersion)
	}
	return o
}

// selects says whether a matchLabels-style selector picks labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort resolves a port given by name or number on a container.
func containerPort(c obj, port string) (int, bool) {
	for _, p := range c.list("ports") {
		if p.str("name") == port || p.str("containerPort") == port {
			n, err := strconv.Atoi(p.str("containerPort"))
			return n, err == nil
		}
	}
	return 0, false
}

// metricsHandler is the executor's real /metrics and /healthz handler with
// zero statistics. metrics.New takes a func returning executor.Stats; its
// zero value is made by reflection to keep this test off the executor
// package.
func metricsHandler(t *testing.T) http.Handler {
	statsFunc := reflect.TypeOf(metrics.New).In(0)
	zero := reflect.MakeFunc(statsFunc, func([]reflect.Value) []reflect.Value {
		return []reflect.Value{reflect.Zero(statsFunc.Out(0))}
	})
	out := reflect.ValueOf(metrics.New).Call([]reflect.Value{zero, reflect.ValueOf(5 * time.Second)})
	m, ok := out[0].Interface().(*metrics.Metrics)
	if !ok {
		t.Fatalf("metrics.New returned %T", out[0].Interface())
	}
	return m.Handler()
}

// served returns the status the executor's metrics server answers for p.
func served(h http.Handler, p string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
	return rec.Code
}

// checkPod checks the executor pod of Deployment dep: env names the
// executor reads (values loaded and validated), secret keys, probes on the
// served /healthz of the metrics port, grace longer than shutdown_grace,
// non-root, read-only root with the work directories on an emptyDir,
// resources. It returns what the callers check further.
func checkPod(t *testing.T, dep, secret obj) (cfg config.Settings, c obj, podLabels map[string]string, metricsPort int, h http.Handler) {
	t.Helper()
	secretData := secret.strMap("stringData")
	for k := range secret.strMap("data") {
		secretData[k] = "(base64)"
	}
	pod := dep.sub("spec", "template")
	podLabels = pod.strMap("metadata", "labels")
	if !selects(dep.strMap("spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("the Deployment's selector does not match its pod labels %v", podLabels)
	}
	if dep.get("spec", "replicas") != nil {
		t.Error("the Deployment sets replicas: the ScaledObject owns them")
	}
	containers := pod.list("spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("want one container, have %d", len(containers))
	}
	c = containers[0]
	// The image is the application's, with the executor copied in.
	if l, _ := c.get("command").([]any); len(l) == 0 || path.Base(fmt.Sprint(l[0])) != "hyperflow-amqp-executor" {
		t.Errorf("command %v does not run hyperflow-amqp-executor", c.get("command"))
	}
	if c.get("lifecycle", "preStop") != nil {
		t.Error("a preStop hook: SIGTERM alone drains the executor")
	}

	// Env names are settings the executor reads; the values load and validate.
	known := config.EnvNames()
	env := map[string]string{}
	for _, e := range c.list("env") {
		name := e.str("name")
		if !slices.Contains(known, name) {
			t.Errorf("env %s is not read by the executor (config.EnvNames: %v)", name, known)
		}
		if _, dup := env[name]; dup {
			t.Errorf("env %s is set twice", name)
		}
		switch ref := e.sub("valueFrom", "secretKeyRef"); {
		case ref != nil:
			if ref.str("name") != secret.str("metadata", "name") {
				t.Errorf("env %s reads Secret %q, the example Secret is %q", name, ref.str("name"), secret.str("metadata", "name"))
			}
			v, ok := secretData[ref.str("key")]
			if !ok && ref.get("optional") != true {
				t.Errorf("env %s reads key %s, not in the Secret and not optional", name, ref.str("key"))
			}
			env[name] = v
		case e.sub("valueFrom", "fieldRef") != nil:
			if e.str("valueFrom", "fieldRef", "fieldPath") == "" {
				t.Errorf("env %s: fieldRef without fieldPath", name)
			}
			env[name] = "from-field"
		case e.get("valueFrom") != nil:
			t.Errorf("env %s: only values, secretKeyRef and fieldRef are checked here", name)
		default:
			if _, isString := e.get("value").(string); !isString {
				t.Errorf("env %s: value %v is not a string (quote it)", name, e.get("value"))
			}
			env[name] = e.str("value")
		}
	}
	if len(c.list("envFrom")) > 0 {
		t.Error("envFrom: every variable should be named, so that it can be checked")
	}
	var args []string
	if l, ok := c.get("args").([]any); ok {
		for _, a := range l {
			args = append(args, fmt.Sprint(a))
		}
	}
	var err error
	cfg, _, err = config.Load(args, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("the Deployment's settings do not load: %v", err)
	}

	// The metrics endpoint: on all interfaces, on the "metrics" port, which
	// the probes, the Service and the ServiceMonitor use.
	if cfg.MetricsAddr == "" {
		t.Fatal("no METRICS_ADDR / --metrics-addr: the probes need it")
	}
	host, portStr, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("metrics address %s: the kubelet and Prometheus cannot reach %s", cfg.MetricsAddr, host)
	}
	metricsPort, _ = strconv.Atoi(portStr)
	if p, ok := containerPort(c, "metrics"); !ok || p != metricsPort {
		t.Errorf("container port \"metrics\" is %d, the metrics address %s", p, cfg.MetricsAddr)
	}
	h = metricsHandler(t)
	if code := served(h, "/no-such-path"); code != http.StatusNotFound {
		t.Fatalf("the metrics handler answers %d for an unknown path", code)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		get := c.sub(probe, "httpGet")
		if get == nil {
			t.Errorf("no %s.httpGet", probe)
			continue
		}
		if p, ok := containerPort(c, get.str("port")); !ok || p != metricsPort {
			t.Errorf("%s port %s is not the metrics port %d", probe, get.str("port"), metricsPort)
		}
		// Served (a disconnected executor answers 503), not 404.
		if get.str("path") != "/healthz" || served(h, get.str("path")) == http.StatusNotFound {
			t.Errorf("%s path %q: the executor's health endpoint is /healthz", probe, get.str("path"))
		}
	}

	// Shutdown: the pod outlives the drain.
	grace, err := strconv.Atoi(pod.str("spec", "terminationGracePeriodSeconds"))
	if err != nil {
		t.Fatalf("terminationGracePeriodSeconds: %v", err)
	}
	if min := cfg.ShutdownGrace + 30*time.Second; time.Duration(grace)*time.Second < min {
		t.Errorf("terminationGracePeriodSeconds %d, want at least shutdown_grace (%v) + 30 s", grace, cfg.ShutdownGrace)
	}

	// Non-root, read-only root, work directories on an emptyDir.
	psc, csc := pod.sub("spec", "securityContext"), c.sub("securityContext")
	if psc.get("runAsNonRoot") != true || psc.str("runAsUser") != "65532" {
		t.Errorf("pod securityContext %v: want runAsNonRoot and the image's user 65532", psc)
	}
	if csc.get("readOnlyRootFilesystem") != true || csc.get("allowPrivilegeEscalation") != false {
		t.Errorf("container securityContext %v: want a read-only root and no privilege escalation", csc)
	}
	if pod.get("spec", "enableServiceLinks") != false {
		t.Error("enableServiceLinks: jobs inherit the executor's environment, keep service variables out")
	}
	emptyDirs := map[string]bool{}
	for _, v := range pod.list("spec", "volumes") {
		if v.get("emptyDir") != nil {
			emptyDirs[v.str("name")] = true
		}
	}
	onEmptyDir := false
	for _, vm := range c.list("volumeMounts") {
		mp := strings.TrimSuffix(vm.str("mountPath"), "/")
		if emptyDirs[vm.str("name")] && (cfg.TmpDir == mp || strings.HasPrefix(cfg.TmpDir, mp+"/")) {
			onEmptyDir = true
		}
	}
	if !onEmptyDir {
		t.Errorf("the work directory root %s (HYPERFLOW_TMPDIR) is not on an emptyDir volume", cfg.TmpDir)
	}
	if c.sub("resources", "requests") == nil || c.sub("resources", "limits") == nil {
		t.Error("no resource requests or limits")
	}

	return cfg, c, podLabels, metricsPort, h
}

func TestManifests(t *testing.T) {
	m := manifests(t, "*.yaml")
	dep := one(t, m, "Deployment", "apps/v1")
	so := one(t, m, "ScaledObject", "keda.sh/v1alpha1")
	ta := one(t, m, "TriggerAuthentication", "keda.sh/v1alpha1")
	pdb := one(t, m, "PodDisruptionBudget", "policy/v1")
	svc := one(t, m, "Service", "v1")
	sm := one(t, m, "ServiceMonitor", "monitoring.coreos.com/v1")
	secret := one(t, m, "Secret", "v1")
	secretData := secret.strMap("stringData")
	for k := range secret.strMap("data") {
		secretData[k] = "(base64)"
	}

	cfg, c, podLabels, metricsPort, h := checkPod(t, dep, secret)

	// KEDA: scales this Deployment on its queue, counting running jobs.
	checkTrigger(t, so, dep, ta, cfg.Queue, "", cfg.Threads)
	hostRef := false
	for _, ref := range ta.list("spec", "secretTargetRef") {
		if ref.str("name") != secret.str("metadata", "name") {
			t.Errorf("TriggerAuthentication reads Secret %q", ref.str("name"))
		}
		v, ok := secretData[ref.str("key")]
		if !ok {
			t.Errorf("TriggerAuthentication reads key %s, not in the Secret", ref.str("key"))
		}
		if ref.str("parameter") == "host" {
			hostRef = true
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				t.Errorf("the management URL %q is not http(s)://", v)
			}
		}
	}
	if !hostRef {
		t.Error("the TriggerAuthentication gives no host")
	}

	// PodDisruptionBudget over the executor pods.
	if !selects(pdb.strMap("spec", "selector", "matchLabels"), podLabels) {
		t.Error("the PodDisruptionBudget does not select the executor pods")
	}

	checkMonitoring(t, svc, sm, c, podLabels, metricsPort, h)
}

// The worker-pool example (worker-pool/): a Deployment running the executor
// in worker-pool mode with the Node listener's settings, scaled by KEDA on
// its task type's queue, with a PodDisruptionBudget; it uses the Secret and
// the TriggerAuthentication of the executor example.
func TestWorkerPoolManifests(t *testing.T) {
	shared := manifests(t, "*.yaml")
	secret := one(t, shared, "Secret", "v1")
	ta := one(t, shared, "TriggerAuthentication", "keda.sh/v1alpha1")
	m := manifests(t, filepath.Join("worker-pool", "*.yaml"))
	dep := one(t, m, "Deployment", "apps/v1")
	so := one(t, m, "ScaledObject", "keda.sh/v1alpha1")
	pdb := one(t, m, "PodDisruptionBudget", "policy/v1")
	svc := one(t, m, "Service", "v1")
	sm := one(t, m, "ServiceMonitor", "monitoring.coreos.com/v1")

	cfg, c, podLabels, metricsPort, h := checkPod(t, dep, secret)
	checkMonitoring(t, svc, sm, c, podLabels, metricsPort, h)
	if !cfg.WorkerPool {
		t.Fatal("the worker-pool Deployment does not select the worker-pool mode (WORKER_POOL)")
	}
	if cfg.PoolQueue == "" || cfg.WorkDir == "" {
		t.Errorf("queue %q, work dir %q: a pool needs QUEUE_NAME and HF_VAR_WORK_DIR", cfg.PoolQueue, cfg.WorkDir)
	}
	// The shared work directory is a mounted volume.
	mounted := false
	for _, vm := range dep.sub("spec", "template").list("spec", "containers")[0].list("volumeMounts") {
		if strings.TrimSuffix(vm.str("mountPath"), "/") == strings.TrimSuffix(cfg.WorkDir, "/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("the work directory %s (HF_VAR_WORK_DIR) is not a mounted volume", cfg.WorkDir)
	}

	checkTrigger(t, so, dep, ta, cfg.PoolQueue, " (QUEUE_NAME)", cfg.Threads)
	if !selects(pdb.strMap("spec", "selector", "matchLabels"), podLabels) {
		t.Error("the PodDisruptionBudget does not select the worker-pool pods")
	}
}

// checkMonitoring: the metrics Service selects the pods and targets their
// metrics port, and the ServiceMonitor selects the Service and scrapes
// /metrics, which the executor serves.
func checkMonitoring(t *testing.T, svc, sm, c obj, podLabels map[string]string, metricsPort int, h http.Handler) {
	t.Helper()
	if !selects(svc.strMap("spec", "selector"), podLabels) {
		t.Error("the metrics Service does not select the executor pods")
	}
	ports := svc.list("spec", "ports")
	if len(ports) != 1 {
		t.Fatalf("want one Service port, have %d", len(ports))
	}
	if p, ok := containerPort(c, ports[0].str("targetPort")); !ok || p != metricsPort {
		t.Errorf("Service targetPort %s is not the metrics port %d", ports[0].str("targetPort"), metricsPort)
	}
	if !selects(sm.strMap("spec", "selector", "matchLabels"), svc.strMap("metadata", "labels")) {
		t.Error("the ServiceMonitor does not select the metrics Service")
	}
	eps := sm.list("spec", "endpoints")
	if len(eps) != 1 || eps[0].str("port") != ports[0].str("name") {
		t.Errorf("ServiceMonitor endpoints %v: want the Service port %q", eps, ports[0].str("name"))
	} else if p := eps[0].str("path"); p != "/metrics" || served(h, p) != http.StatusOK {
		t.Errorf("ServiceMonitor path %q: the executor serves /metrics", p)
	}
}

// checkTrigger: the ScaledObject scales dep from zero with one rabbitmq
// trigger over the management API counting ready + unacknowledged messages
// of queue (what says where it is set), threads per pod, its password given
// through the TriggerAuthentication ta.
func checkTrigger(t *testing.T, so, dep, ta obj, queue, what string, threads int) {
	t.Helper()
	if so.str("spec", "scaleTargetRef", "name") != dep.str("metadata", "name") {
		t.Errorf("ScaledObject targets %q, the Deployment is %q", so.str("spec", "scaleTargetRef", "name"), dep.str("metadata", "name"))
	}
	if k := so.str("spec", "scaleTargetRef", "kind"); k != "" && k != "Deployment" {
		t.Errorf("ScaledObject targets a %s", k)
	}
	if so.str("spec", "minReplicaCount") != "0" {
		t.Errorf("minReplicaCount %s, want 0 (scale from zero)", so.str("spec", "minReplicaCount"))
	}
	triggers := so.list("spec", "triggers")
	if len(triggers) != 1 {
		t.Fatalf("want one trigger, have %d", len(triggers))
	}
	tr := triggers[0]
	md := tr.strMap("metadata")
	if tr.str("type") != "rabbitmq" || md["protocol"] != "http" || md["mode"] != "QueueLength" {
		t.Errorf("trigger %s %v: want rabbitmq, protocol http, mode QueueLength (ready + unacknowledged)", tr.str("type"), md)
	}
	if v, ok := md["excludeUnacknowledged"]; ok && v != "false" {
		t.Errorf("excludeUnacknowledged %s: running jobs must count", v)
	}
	if md["queueName"] != queue {
		t.Errorf("the trigger watches queue %q, the pods consume %q%s", md["queueName"], queue, what)
	}
	if md["value"] != strconv.Itoa(threads) {
		t.Errorf("the trigger's value %s is not THREADS %d (jobs per pod)", md["value"], threads)
	}
	if md["host"] != "" || md["hostFromEnv"] != "" {
		t.Error("the management URL holds a password: give it through the TriggerAuthentication")
	}
	if tr.str("authenticationRef", "name") != ta.str("metadata", "name") {
		t.Errorf("authenticationRef %q, the TriggerAuthentication is %q", tr.str("authenticationRef", "name"), ta.str("metadata", "name"))
	}
}
