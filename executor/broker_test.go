package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

func TestConsumerTimeoutPerBroker(t *testing.T) {
	v := func(major, minor int) eventbus.ServerInfo {
		return eventbus.ServerInfo{Product: "RabbitMQ", Major: major, Minor: minor}
	}
	for _, tt := range []struct {
		info        eventbus.ServerInfo
		perConsumer bool
		fix         string
	}{
		{v(3, 10), false, "consumer_timeout = 86400000 in rabbitmq.conf"},
		{v(3, 12), true, `rabbitmqctl set_policy hyperflow-long-jobs '^hyperflow\.jobs$' '{"consumer-timeout":86400000}' --apply-to queues`},
		{v(3, 13), true, "set_policy"},
		{v(4, 0), false, `'^hyperflow\.jobs$' '{"consumer-timeout":86400000}'`},
		{v(4, 3), false, "set_policy"},
	} {
		if got := perConsumerTimeout(tt.info); got != tt.perConsumer {
			t.Errorf("%d.%d: per-consumer timeout %v, want %v", tt.info.Major, tt.info.Minor, got, tt.perConsumer)
		}
		if fix := timeoutFix(tt.info, "hyperflow.jobs", 24*time.Hour); !strings.Contains(fix, tt.fix) {
			t.Errorf("%d.%d: fix %q, want it to contain %q", tt.info.Major, tt.info.Minor, fix, tt.fix)
		}
	}
	if w := brokerWarnings(v(4, 0)); len(w) != 1 || !strings.Contains(w[0].Error(), "consumer-timeout policy") {
		t.Errorf("4.0 warnings %v", w)
	}
	if w := brokerWarnings(v(3, 10)); len(w) != 1 || !strings.Contains(w[0].Error(), "out of support") {
		t.Errorf("3.10 warnings %v", w)
	}
	if w := brokerWarnings(v(3, 13)); len(w) != 0 {
		t.Errorf("3.13 warnings %v", w)
	}
}
