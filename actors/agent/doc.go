// Package agent holds the agent: the root actor of a Berth node. It builds
// every component from Options (the store, the rootfs backends, the
// provisioner, the isolators, the launcher and the containerizer), spawns them
// as its children so that it supervises them, recovers their state from disk
// on start, and serves the agent API (agentv1): run a container in a fresh
// sandbox, describe the agent.
//
// Directory layout owned by the agent, with Mesos's names where they exist:
//
//	<work_dir>/
//	  store/docker/        the docker store (actors/store/docker)
//	  store/appc/          the appc store (actors/store/appc), when appc is
//	                       among --image_providers
//	  provisioner/         rootfses (actors/provisioner)
//	  sandboxes/<id>/      each container's sandbox: stdout, stderr, fetched URIs
//	<runtime_dir>/
//	  containers/<id>/     checkpoints: config, pid, status
package agent
