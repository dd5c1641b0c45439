// Command labsvc runs the deterministic demo service of package labsvc,
// for example inside a lab replica namespace:
//
//	labsvc -listen 198.18.0.10:7000
package main

import (
	"os"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

func main() { os.Exit(labsvc.Main(os.Args[1:])) }
