package workerpool

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

func TestHFLogEnv(t *testing.T) {
	got := hfLogEnv([]string{"HF_LOG_NODE_NAME=node-7", "HF_LOG_POD_NAME=pod-x", "HF_LOG_=x", "HF_VAR_A=b", "PATH=/bin"})
	if want := map[string]string{"nodeName": "node-7", "podName": "pod-x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hfLogEnv = %v, want %v", got, want)
	}
}

// The trace file has the listener's log4js layout.
func TestTraceLayout(t *testing.T) {
	name := filepath.Join(t.TempDir(), "task.log")
	s, err := openSink(name, true)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trace{s: s}
	tr.start([]string{"HF_LOG_NODE_NAME=n1"}, "abc")
	tr.warn("careful")
	if err := tr.close(); err != nil {
		t.Fatal(err)
	}
	var none *trace
	none.info("nothing") // a trace that could not be opened writes nothing
	data, _ := os.ReadFile(name)
	want := regexp.MustCompile(`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\] \[INFO\] hftrace - Environment variables \(HF_LOG\): \{"nodeName":"n1"\}
\[[^]]+\] \[INFO\] hftrace - handler started, \(ID: abc\)
\[[^]]+\] \[WARN\] hftrace - careful
$`)
	if !want.Match(data) {
		t.Errorf("trace file:\n%s", data)
	}
}
