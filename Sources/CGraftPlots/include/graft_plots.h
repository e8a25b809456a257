// SVG → PNG through librsvg and cairo (Debian's librsvg2-2), loaded at run time: a machine without them still
// writes the SVG plots, and says it wrote no PNG.
#ifndef GRAFT_PLOTS_H
#define GRAFT_PLOTS_H
#include <stddef.h>

/// Renders `svg` (`length` bytes) at `width`×`height` pixels into a PNG in memory. On success returns 0 and sets
/// `*png`/`*png_length` (free with graft_plots_free). On failure returns -1 and writes a message into `error`.
int graft_svg_to_png(const char *svg, size_t length, int width, int height, unsigned char **png, size_t *png_length,
                     char *error, size_t error_length);
void graft_plots_free(unsigned char *png);
#endif
