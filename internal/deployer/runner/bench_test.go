package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/fakereceiver"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
)

// The deployer's overhead: a plan of 100 trivial steps, delivered to a
// receiver over HTTP, against one shell script running the same commands.
// Compare ns/op of the two: (plan - script) / 100 is the cost per step.
const benchSteps = 100

func benchPlan(b *testing.B) *plan.Plan {
	var sb strings.Builder
	sb.WriteString("service: web\nenvironment: bench\nsteps:\n")
	for i := range benchSteps {
		fmt.Fprintf(&sb, "  - {name: step-%d, command: [true]}\n", i)
	}
	p, err := plan.Parse("bench.yaml", []byte(sb.String()))
	require.NoError(b, err)
	return p
}

func BenchmarkPlan100Steps(b *testing.B) {
	p := benchPlan(b)
	rcv := fakereceiver.Start()
	defer rcv.Close()
	spool, err := delivery.NewSpool(b.TempDir())
	require.NoError(b, err)
	client, err := delivery.NewClient(delivery.DefaultConfig(rcv.URL()))
	require.NoError(b, err)
	n := 0
	for b.Loop() {
		n++
		shipper := delivery.NewShipper(client, spool, delivery.ShipperOptions{})
		res := Run(context.Background(), Options{
			Plan: p, PlanPath: "bench.yaml", Vars: map[string]string{}, DeploymentID: fmt.Sprintf("bench-%d", n),
			Sink: shipper, Masker: mask.New(), Environ: os.Environ(),
		})
		st := shipper.Close(context.Background())
		require.Equal(b, "success", res.Status)
		require.Equal(b, 2*benchSteps+2, st.Delivered)
	}
}

func BenchmarkShellScript100Steps(b *testing.B) {
	script := strings.Repeat("/bin/true\n", benchSteps)
	for b.Loop() {
		require.NoError(b, exec.Command("/bin/sh", "-c", script).Run())
	}
}
