package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// A minimal plotting kit: a canvas with lines, rectangles and bitmap text,
// and three chart kinds (grouped bars, CDF lines). Enough for the bench's
// three figures without a plotting dependency.

var (
	white   = color.RGBA{255, 255, 255, 255}
	black   = color.RGBA{0, 0, 0, 255}
	grey    = color.RGBA{200, 200, 200, 255}
	palette = []color.RGBA{
		{31, 119, 180, 255},  // blue
		{255, 127, 14, 255},  // orange
		{44, 160, 44, 255},   // green
		{214, 39, 40, 255},   // red
		{148, 103, 189, 255}, // purple
		{140, 86, 75, 255},   // brown
	}
)

type canvas struct{ img *image.RGBA }

func newCanvas(w, h int) *canvas {
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.fill(0, 0, w, h, white)
	return c
}

func (c *canvas) fill(x0, y0, x1, y1 int, col color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

// line draws a line w pixels thick (square brush).
func (c *canvas) line(x0, y0, x1, y1 float64, w int, col color.RGBA) {
	n := int(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))) + 1
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		x := int(math.Round(x0 + f*(x1-x0)))
		y := int(math.Round(y0 + f*(y1-y0)))
		c.fill(x-w/2, y-w/2, x-w/2+w, y-w/2+w, col)
	}
}

// text draws s with its top-left corner at (x, y), each font pixel scale
// pixels wide.
func (c *canvas) text(x, y int, s string, scale int, col color.RGBA) {
	for _, r := range s {
		g := glyph(r)
		for row := 0; row < 7; row++ {
			for bit := 0; bit < 5; bit++ {
				if g[row]&(1<<(4-bit)) != 0 {
					c.fill(x+bit*scale, y+row*scale, x+(bit+1)*scale, y+(row+1)*scale, col)
				}
			}
		}
		x += 6 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 6 * scale }

func (c *canvas) savePNG(path string) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, c.img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// frame is a chart's plotting area and axis mapping.
type frame struct {
	c             *canvas
	left, top     int
	right, bottom int
	xmin, xmax    float64
	ymin, ymax    float64
	logX          bool
	title, xl, yl string
}

func (f *frame) px(x float64) float64 {
	if f.logX {
		return float64(f.left) + (math.Log10(x)-math.Log10(f.xmin))/(math.Log10(f.xmax)-math.Log10(f.xmin))*float64(f.right-f.left)
	}
	return float64(f.left) + (x-f.xmin)/(f.xmax-f.xmin)*float64(f.right-f.left)
}

func (f *frame) py(y float64) float64 {
	return float64(f.bottom) - (y-f.ymin)/(f.ymax-f.ymin)*float64(f.bottom-f.top)
}

// axes draws the title, axis labels, y grid and ticks.
func (f *frame) axes(yticks, xticks []float64, xfmt, yfmt string) {
	c := f.c
	c.text((f.left+f.right-textWidth(f.title, 3))/2, 12, f.title, 3, black)
	for _, y := range yticks {
		py := int(f.py(y))
		c.line(float64(f.left), float64(py), float64(f.right), float64(py), 1, grey)
		l := fmt.Sprintf(yfmt, y)
		c.text(f.left-8-textWidth(l, 2), py-7, l, 2, black)
	}
	for _, x := range xticks {
		px := int(f.px(x))
		c.line(float64(px), float64(f.bottom), float64(px), float64(f.bottom+6), 2, black)
		l := fmt.Sprintf(xfmt, x)
		c.text(px-textWidth(l, 2)/2, f.bottom+12, l, 2, black)
	}
	c.line(float64(f.left), float64(f.top), float64(f.left), float64(f.bottom), 2, black)
	c.line(float64(f.left), float64(f.bottom), float64(f.right), float64(f.bottom), 2, black)
	c.text((f.left+f.right-textWidth(f.xl, 2))/2, f.bottom+40, f.xl, 2, black)
	// The y label goes above the axis (the font has no rotation).
	c.text(f.left-40, f.top-28, f.yl, 2, black)
}

// legend draws a colour key at the top right of the plotting area, or at
// the bottom right (where a CDF has nothing to hide).
func (f *frame) legend(names []string, bottom bool) {
	w := 0
	for _, n := range names {
		w = max(w, textWidth(n, 2))
	}
	x := f.right - w - 40
	y := f.top + 8
	if bottom {
		y = f.bottom - len(names)*22 - 8
	}
	f.c.fill(x-8, y-6, f.right-4, y+len(names)*22+2, white)
	for i, n := range names {
		col := palette[i%len(palette)]
		f.c.fill(x, y+i*22, x+20, y+i*22+14, col)
		f.c.text(x+28, y+i*22, n, 2, black)
	}
}

// niceTicks returns about n round tick values covering [0, hi].
func niceTicks(hi float64, n int) []float64 {
	if hi <= 0 {
		return []float64{0}
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	for v := 0.0; v <= hi*1.0001; v += step {
		t = append(t, v)
	}
	return t
}

// barChart draws groups of bars: values[s][g] is series s in group g; a
// missing value is NaN.
func barChart(path, title, ylabel string, groups, series []string, values [][]float64) error {
	const w, h = 1200, 640
	c := newCanvas(w, h)
	hi := 0.0
	for _, s := range values {
		for _, v := range s {
			if !math.IsNaN(v) {
				hi = math.Max(hi, v)
			}
		}
	}
	ticks := niceTicks(hi*1.12, 6)
	f := &frame{c: c, left: 110, top: 80, right: w - 30, bottom: h - 80, xmin: 0, xmax: 1, ymin: 0,
		ymax: ticks[len(ticks)-1], title: title, yl: ylabel}
	f.axes(ticks, nil, "", "%g")
	gw := float64(f.right-f.left) / float64(len(groups))
	bw := gw * 0.8 / float64(len(series))
	for g, name := range groups {
		x0 := float64(f.left) + float64(g)*gw + gw*0.1
		for s := range series {
			v := values[s][g]
			if math.IsNaN(v) {
				continue
			}
			bx := x0 + float64(s)*bw
			c.fill(int(bx), int(f.py(v)), int(bx+bw-3), f.bottom, palette[s%len(palette)])
			l := fmt.Sprintf("%.1f", v)
			c.text(int(bx+bw/2)-textWidth(l, 1)/2-1, int(f.py(v))-10, l, 1, black)
		}
		c.text(int(x0+gw*0.4)-textWidth(name, 2)/2, f.bottom+12, name, 2, black)
	}
	f.legend(series, false)
	return c.savePNG(path)
}

// cdfChart draws one empirical CDF line per series (values sorted
// ascending) over [xmin, xmax], optionally with a log x axis.
func cdfChart(path, title, xlabel string, names []string, sorted [][]float64, xmin, xmax float64, logX bool, xticks []float64) error {
	const w, h = 1200, 640
	c := newCanvas(w, h)
	f := &frame{c: c, left: 110, top: 80, right: w - 30, bottom: h - 80, xmin: xmin, xmax: xmax, ymin: 0, ymax: 1,
		logX: logX, title: title, xl: xlabel, yl: "fraction"}
	f.axes([]float64{0, 0.25, 0.5, 0.75, 1}, xticks, "%g", "%.2f")
	clip := func(x float64) float64 { return math.Max(xmin, math.Min(xmax, x)) }
	for s, v := range sorted {
		col := palette[s%len(palette)]
		if len(v) == 0 {
			continue
		}
		// Step through at most ~2000 points: enough for the eye.
		stride := max(1, len(v)/2000)
		px, py := f.px(clip(v[0])), f.py(0)
		for i := 0; i < len(v); i += stride {
			x, y := f.px(clip(v[i])), f.py(float64(i+1)/float64(len(v)))
			c.line(px, py, x, py, 3, col)
			c.line(x, py, x, y, 3, col)
			px, py = x, y
		}
		x := f.px(clip(v[len(v)-1]))
		c.line(px, py, x, f.py(1), 3, col)
	}
	f.legend(names, true)
	return c.savePNG(path)
}
