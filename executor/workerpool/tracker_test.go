package workerpool

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestTracker(t *testing.T) {
	tr := newTracker(2)
	d := amqp.Delivery{Body: []byte(`{"tasks":[1]}`)}
	key, attached, count := tr.admit(d)
	if attached || count != 1 {
		t.Fatalf("first delivery: attached %v count %d", attached, count)
	}
	if _, attached, _ := tr.admit(d); !attached {
		t.Error("redelivery of a running message not attached")
	}
	if extra := tr.settled(key, false); len(extra) != 1 {
		t.Errorf("settled returned %d attached deliveries, want 1", len(extra))
	}
	if _, _, count := tr.admit(d); count != 2 {
		t.Errorf("requeued message counted %d, want 2", count)
	}
	tr.settled(key, true)
	if _, _, count := tr.admit(d); count != 1 {
		t.Errorf("after a final settlement counted %d, want 1", count)
	}
	tr.settled(key, true)
	// The broker's count wins when it is higher.
	q := amqp.Delivery{Body: []byte("q"), Headers: amqp.Table{"x-delivery-count": int64(4)}}
	if _, _, count := tr.admit(q); count != 5 {
		t.Errorf("with x-delivery-count 4: %d, want 5", count)
	}
	// Completed tasks, a bounded memory.
	tr.completed("h:1:1:1")
	tr.completed("h:1:2:1")
	tr.completed("h:1:3:1")
	if tr.wasCompleted("h:1:1:1") || !tr.wasCompleted("h:1:2:1") || !tr.wasCompleted("h:1:3:1") {
		t.Error("completed tasks: want the last two remembered")
	}
}
