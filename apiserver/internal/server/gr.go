package server

import "k8s.io/apimachinery/pkg/runtime/schema"

func schemaGR(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }
