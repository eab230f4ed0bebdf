// Command freeport prints N distinct free TCP ports on the loopback
// interface, one per line (N defaults to 1).
//
// It binds N listeners on 127.0.0.1:0 at the same time, so the kernel hands
// out N different ports, then closes them and prints the numbers. A port is
// only guaranteed free at the moment it is printed; the caller should bind it
// promptly. The test scripts use it as:
//
//	go run ./scripts/freeport 3
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	n := 1
	if len(os.Args) > 2 {
		fail("usage: freeport [N]")
	}
	if len(os.Args) == 2 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 || v > 100 {
			fail("freeport: N must be an integer between 1 and 100")
		}
		n = v
	}

	listeners := make([]net.Listener, 0, n)
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fail("freeport: " + err.Error())
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range listeners {
		_ = l.Close()
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}
