// libpng (simplified png_image API: no setjmp needed), libjpeg-turbo's TurboJPEG API, and zlib (gzip files).
#ifndef GRAFT_CIMAGE_SHIM_H
#define GRAFT_CIMAGE_SHIM_H
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>
#endif
