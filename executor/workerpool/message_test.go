package workerpool

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// A message as engine 1.7.0 publishes it (captured, shortened): the whole
// process config plus ins/outs, inputs/outputs and its bookkeeping fields.
func TestParseBodyEngineMessage(t *testing.T) {
	body, err := os.ReadFile("testdata/engine-message.json")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Err != nil {
		t.Fatalf("tasks = %+v", tasks)
	}
	tk := tasks[0]
	if tk.ID != "ab12:1:5:1" || tk.ID.HFID() != "ab12" || tk.ID.WFID() != "1" {
		t.Errorf("id %q hf %q wf %q", tk.ID, tk.ID.HFID(), tk.ID.WFID())
	}
	want := &JobMessage{
		Name: "mProject", Executable: "mProject",
		Args: []string{"-X", "2mass-atlas-990214n-j1100244.fits", "p2mass-atlas-990214n-j1100244.fits", "region.hdr", "3"},
		Inputs: []Signal{
			{Name: "2mass-atlas-990214n-j1100244.fits", WorkflowInput: true},
			{Name: "region.hdr", Size: 3085},
			{Name: "params"},
		},
		Outputs:      []Signal{{Name: "p2mass-atlas-990214n-j1100244.fits"}},
		Stdout:       "mProject.log",
		StdoutAppend: true,
		Transport:    TransportSet,
	}
	if !reflect.DeepEqual(tk.Job, want) {
		t.Errorf("job =\n%+v\nwant\n%+v", tk.Job, want)
	}
}

func TestParseBodyTasks(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // of the message as a whole
		taskErr string // of the first task
		check   func(t *testing.T, j *JobMessage)
	}{
		{name: "not JSON", body: `{"tasks":`, wantErr: "message is not a JSON object"},
		{name: "no tasks", body: `{"task":[]}`, wantErr: `message has no "tasks" array`},
		{name: "tasks not an array", body: `{"tasks":{}}`, wantErr: "tasks: must be an array"},
		{name: "empty tasks", body: `{"tasks":[]}`, wantErr: "tasks: empty array"},
		{name: "id missing", body: `{"tasks":[{"message":{"executable":"x"}}]}`, wantErr: "tasks[0].id: must be a string"},
		{name: "id a number", body: `{"tasks":[{"id":5,"message":{"executable":"x"}}]}`, wantErr: "tasks[0].id: must be a string"},
		{name: "id without wfId", body: `{"tasks":[{"id":"abc","message":{"executable":"x"}}]}`,
			wantErr: `tasks[0].id: "abc" is not a task id of the form hfId:wfId:procId:firingId`},
		{name: "message missing", body: `{"tasks":[{"id":"h:1:2:3"}]}`, taskErr: "tasks[0].message: missing"},
		{name: "no executable", body: `{"tasks":[{"id":"h:1:2:3","message":{"args":[]}}]}`, taskErr: "tasks[0].message.executable: missing or empty"},
		{name: "executable a number", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":3}}]}`,
			taskErr: "tasks[0].message.executable: must be a string, got a number"},
		{name: "args a string", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"x","args":"a b"}}]}`,
			taskErr: "tasks[0].message.args: must be an array, got a string"},
		{name: "arg an object", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"x","args":["a",{}]}}]}`,
			taskErr: "tasks[0].message.args[1]: must be a string or a number, got an object"},
		{name: "input without name", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"x","inputs":[{"_id":1}]}}]}`,
			taskErr: "tasks[0].message.inputs[0].name: missing or empty"},
		{name: "stdout a list", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"x","stdout":["a"]}}]}`,
			taskErr: "tasks[0].message.stdout: must be a string, got an array"},
		{name: "numbers and booleans as Node passes them", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"x","args":[1000,0.5,-2,1e3,true]}}]}`,
			check: func(t *testing.T, j *JobMessage) {
				if want := []string{"1000", "0.5", "-2", "1000", "true"}; !reflect.DeepEqual(j.Args, want) {
					t.Errorf("args %q, want %q", j.Args, want)
				}
			}},
		{name: "shell, stream, stderr over stderrAppend", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"echo","shell":true,` +
			`"completionTransport":"stream","stderr":"e.txt","stderrAppend":"other.txt","stdout":null}}]}`,
			check: func(t *testing.T, j *JobMessage) {
				if !j.Shell || j.Transport != TransportStream || j.Stderr != "e.txt" || j.StderrAppend || j.Stdout != "" {
					t.Errorf("job %+v", j)
				}
			}},
		{name: "shell false and unknown transport", body: `{"tasks":[{"id":"h:1:2:3","message":{"executable":"echo","shell":false,"completionTransport":"carrier-pigeon"}}]}`,
			check: func(t *testing.T, j *JobMessage) {
				if j.Shell || j.Transport != TransportSet {
					t.Errorf("job %+v", j)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := ParseBody([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.taskErr != "" {
				if tasks[0].Err == nil || tasks[0].Err.Error() != tt.taskErr {
					t.Fatalf("task err = %v, want %q", tasks[0].Err, tt.taskErr)
				}
				if tasks[0].ID != "h:1:2:3" {
					t.Errorf("a refused task keeps its id, got %q", tasks[0].ID)
				}
				return
			}
			if tasks[0].Err != nil {
				t.Fatal(tasks[0].Err)
			}
			tt.check(t, tasks[0].Job)
		})
	}
}

// Tasks of one message keep their order, and one bad task does not spoil
// the others.
func TestParseBodyBatch(t *testing.T) {
	tasks, err := ParseBody([]byte(`{"tasks":[{"id":"h:1:1:1","message":{"executable":"a"}},` +
		`{"id":"h:1:2:1","message":{"executable":""}},{"id":"h:1:3:1","message":{"executable":"c"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 3 || tasks[0].Job.Executable != "a" || tasks[1].Err == nil || tasks[2].Job.Executable != "c" {
		t.Errorf("tasks = %+v", tasks)
	}
}

func FuzzParseBody(f *testing.F) {
	body, _ := os.ReadFile("testdata/engine-message.json")
	f.Add(body)
	f.Add([]byte(`{"tasks":[{"id":"a:b","message":{"executable":"x","args":[1,"2"]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tasks, err := ParseBody(b)
		if err == nil && len(tasks) == 0 {
			t.Error("no error and no task")
		}
		for _, tk := range tasks {
			if (tk.Job == nil) == (tk.Err == nil) {
				t.Errorf("task %q: job %v, err %v: exactly one must be set", tk.ID, tk.Job, tk.Err)
			}
		}
	})
}
