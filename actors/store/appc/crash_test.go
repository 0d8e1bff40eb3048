package appc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthrt/berth/fixtures/aci"
	"github.com/berthrt/berth/fixtures/layers"
)

// A fetch killed midway (the process, with SIGKILL) leaves only a staging
// directory; Recover removes it and a retry stores the image.
func TestFetchKilledMidway(t *testing.T) {
	var files []layers.Entry
	for i := range 8 {
		body := strings.Repeat(string(rune('a'+i)), 256<<10)
		files = append(files, file("data/"+string(rune('a'+i)), body))
	}
	img, err := aci.Build(aci.Spec{Manifest: manifest("big", "1"), Files: files})
	if err != nil {
		t.Fatal(err)
	}
	var whole atomic.Bool
	halfSent := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if whole.Load() {
			_, _ = w.Write(img.Data)
			return
		}
		// Half the image, then nothing until the client goes away.
		_, _ = w.Write(img.Data[:len(img.Data)/2])
		w.(http.Flusher).Flush()
		select {
		case halfSent <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	dir := tempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fetchChildEnv+"="+dir+"|"+srv.URL+"/|big:1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case <-halfSent:
	case <-time.After(time.Minute):
		t.Fatal("the child never fetched")
	}
	// Wait for the extraction to have written part of the image.
	deadline := time.Now().Add(time.Minute)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "staging", "aci-*", "rootfs", "data", "a"))
		if len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no partial extraction in staging")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if got := entries(t, filepath.Join(dir, "images")); len(got) != 0 {
		t.Fatalf("a killed fetch published %v", got)
	}
	if got := entries(t, filepath.Join(dir, "staging")); len(got) != 1 {
		t.Fatalf("staging holds %v, want the interrupted extraction", got)
	}

	whole.Store(true)
	s := newStore(t, dir, srv.URL+"/")
	res, err := s.Recover(context.Background())
	if err != nil || res.Images != 0 {
		t.Fatalf("recover %+v %v", res, err)
	}
	if got := entries(t, filepath.Join(dir, "staging")); len(got) != 0 {
		t.Errorf("staging holds %v after recover", got)
	}
	got, err := s.Get(context.Background(), "big:1", "", true)
	if err != nil || got.Digest != img.ID {
		t.Fatalf("retry: %s %v", got.Digest, err)
	}
	if b, err := os.ReadFile(filepath.Join(got.Layers[0], "data", "h")); err != nil || len(b) != 256<<10 {
		t.Errorf("data/h: %d bytes, %v", len(b), err)
	}
}
