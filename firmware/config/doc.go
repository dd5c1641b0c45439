// Package config is the appliance's on-disk configuration: the JSON document
// that ftbridged reads with --config, its defaults, its validation and its
// durable storage.
//
// The document is a stable, hand-written contract, described field by field
// in docs/config.md. A minimal document names the uplink port, the replica
// ports and the services:
//
//	{
//	  "uplink": "port0",
//	  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
//	  "services": [ {"address": "198.18.0.10", "ports": [6379, 80]} ]
//	}
//
// Every other field is optional; an omitted field takes the dataplane's
// default (engine.Config.WithDefaults). The package reads documents strictly:
// unknown keys, keys in the wrong case, duplicate keys, explicit nulls,
// explicit zeros for optional numbers and data after the document are errors,
// each naming the offending field by its path, such as
// "services[0].ports[1]".
//
// Parse decodes a document, Validate checks its meaning, Load does both for a
// file, Dataplane converts a valid Config into the dataplane's
// engine.Config, and Save writes a Config back with WriteFileAtomic, which
// never leaves a partial file behind.
package config
