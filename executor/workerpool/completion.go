package workerpool

import "strconv"

// streamMaxLen bounds the completions stream as the listener does
// (MAXLEN ~ 100000).
const streamMaxLen = "100000"

// Completion is what the engine waits for: a task's exit code, reported
// by one of the two transports.
type Completion struct {
	Task      TaskID
	Code      int
	Transport Transport
}

// Commands returns the Redis commands that report c, in order, as the Node
// listener sends them (connector.js). They are sent in one MULTI/EXEC
// transaction, so that the engine, which polls the pending set and then pops
// the task's set, never sees the task pending without its code.
//
//	set:    SADD <taskId> <code>
//	        SADD wf:<wfId>:tasksPendingCompletionHandling <taskId>
//	stream: XADD hf:<hfId>:completions MAXLEN ~ 100000 * taskId <taskId> code <code>
//
// Writing the set transport twice is harmless (sets); the stream transport
// then has the entry twice.
func (c Completion) Commands() [][]any {
	code := strconv.Itoa(c.Code)
	id := string(c.Task)
	if c.Transport == TransportStream {
		return [][]any{{"XADD", "hf:" + c.Task.HFID() + ":completions", "MAXLEN", "~", streamMaxLen, "*",
			"taskId", id, "code", code}}
	}
	return [][]any{
		{"SADD", id, code},
		{"SADD", PendingKey(c.Task), id},
	}
}

// PendingKey is the set the engine polls for completed tasks of the
// task's workflow.
func PendingKey(id TaskID) string { return "wf:" + id.WFID() + ":tasksPendingCompletionHandling" }

// CompletedKey is the set of the workflow's tasks the engine has processed
// as successful; a task found there is not run again.
func CompletedKey(id TaskID) string { return "wf:" + id.WFID() + ":completedTasks" }
