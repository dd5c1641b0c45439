package main

import "github.com/ftbridge/ftbridge/webui"

// The daemon serves the dashboard from the assets embedded in package webui.
func init() { uiHandler = webui.Handler() }
