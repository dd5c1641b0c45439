// Package buildroot holds no code: buildroot/ is a BR2_EXTERNAL tree for
// building ftbridge firmware with Buildroot on a connected machine (see
// README.md). Its test checks the tree's internal consistency, since the
// tree cannot be built where the project's CI runs (Buildroot downloads its
// sources): every file a defconfig, Config.in or .mk names exists, each
// board of board/ has a defconfig and a genimage configuration equal to the
// one the Debian image recipe uses, and the Go package's module path and Go
// version are the project's.
package buildroot
