package config_test

import (
	"fmt"
	"os"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

func ExampleLoad() {
	env := map[string]string{
		"AMQP_URL": "amqp://hyperflow:s3cret@rabbitmq:5672/",
		"STORAGE":  "nfs",
	}
	// In main: config.Load(os.Args[1:], os.Getenv, os.Stderr).
	s, flags, err := config.Load(
		[]string{"testdata/original-settings.yml", "--threads", "4"},
		func(k string) string { return env[k] },
		os.Stderr,
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(flags.File, flags.Help, len(flags.Warnings))
	fmt.Println(s.AMQPURL, s.Storage, s.Threads)
	fmt.Printf("%q %q\n", s.PLGData.Proxy, s.Cloud.Region)
	// Output:
	// testdata/original-settings.yml false 0
	// amqp://hyperflow:***@rabbitmq:5672/ nfs 4
	// "./grid_proxy " "us-east-1"
}

func ExampleSecret() {
	key := config.Secret("wJalrXUtnFEMI")
	url := config.Secret("amqp://guest:guest@localhost:5672/")
	fmt.Println(key, url)
	fmt.Printf("%#v\n", key)
	fmt.Println(key.Reveal())
	// Output:
	// *** amqp://guest:***@localhost:5672/
	// "***"
	// wJalrXUtnFEMI
}
