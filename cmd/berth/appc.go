package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/appc"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// imageMessage turns --image into the image message: appc:NAME[:VERSION][,LABEL=VALUE...]
// or appc:sha512-... for the appc store, anything else for the docker store.
func imageMessage(ref string) (*typesv1.Image, error) {
	if !strings.HasPrefix(ref, appc.Prefix) {
		return &typesv1.Image{Type: typesv1.Image_TYPE_DOCKER, Docker: &typesv1.Image_Docker{Name: ref}, Cached: true}, nil
	}
	r, err := appc.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return &typesv1.Image{Type: typesv1.Image_TYPE_APPC, Appc: &typesv1.Image_Appc{Name: r.Name, Id: r.ID, Labels: r.Labels}, Cached: true}, nil
}

// appcStore opens the appc store for `berth image` when appc is among
// --image_providers (nil otherwise), recovered when recovered is true:
// only commands holding the work dir's lock may recover, which clears the
// staging of a running agent's fetches.
func appcStore(ctx context.Context, af agentFlags, recovered bool) (store.Store, error) {
	o := af.options()
	if on, err := o.AppcEnabled(); err != nil || !on {
		return nil, err
	}
	s, err := agent.NewAppcStore(o, nil)
	if err != nil {
		return nil, err
	}
	if !recovered {
		return s, nil
	}
	if _, err := s.Recover(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// storeFor returns the store a reference of `berth image` is for: the
// appc store for appc:..., else the docker store st.
func storeFor(ctx context.Context, af agentFlags, st store.Store, ref string) (store.Store, error) {
	if !strings.HasPrefix(ref, appc.Prefix) {
		return st, nil
	}
	s, err := appcStore(ctx, af, true)
	if err == nil && s == nil {
		err = fmt.Errorf("the appc store is off (--image_providers): %w", errdefs.ErrFailedPrecondition)
	}
	return s, err
}

// appcImages lists the appc store's images as `berth image ls` rows.
func appcImages(ctx context.Context, af agentFlags) []store.Image {
	s, err := appcStore(ctx, af, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: appc store: %v\n", err)
		return nil
	}
	if s == nil {
		return nil
	}
	imgs, err := s.List(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: appc store: %v\n", err)
		return nil
	}
	for i := range imgs {
		imgs[i].Reference = appc.Prefix + imgs[i].Reference
	}
	return imgs
}
