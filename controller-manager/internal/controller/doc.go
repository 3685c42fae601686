// Package controller holds what Coxswain's controllers share: the worker
// loop over a rate-limited queue, expectations that keep a stale cache from
// making a controller act twice, claiming objects through ownerReferences,
// and the ranking and readiness of pods.
package controller
