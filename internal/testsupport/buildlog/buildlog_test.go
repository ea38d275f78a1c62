package buildlog

import (
	"strings"
	"testing"
)

func TestStepCached(t *testing.T) {
	const slowStep = "RUN sleep 4 && head -c 16777216 /dev/urandom > /data.bin"
	const out = `#5 [1/3] FROM docker.io/local/busybox:latest
#5 DONE 0.0s

#7 [2/3] RUN sleep 4 && head -c 16777216 /dev/urandom > /data.bin
#7 CACHED

#8 [3/3] COPY stamp /stamp
#8 DONE 0.3s
`
	if !StepCached(out, slowStep) {
		t.Error("a CACHED step not seen")
	}
	if StepCached(strings.Replace(out, "#7 CACHED", "#7 DONE 4.2s", 1), slowStep) {
		t.Error("a step that ran seen as CACHED")
	}
	if StepCached("#8 [3/3] COPY stamp /stamp\n#7 CACHED\n", "COPY stamp") {
		t.Error("another step's CACHED counted")
	}
}
