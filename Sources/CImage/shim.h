// libpng (simplified png_image API: no setjmp needed) and libjpeg-turbo's TurboJPEG API.
#ifndef GRAFT_CIMAGE_SHIM_H
#define GRAFT_CIMAGE_SHIM_H
#include <png.h>
#include <turbojpeg.h>
#endif
