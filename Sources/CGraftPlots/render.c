// librsvg's and cairo's C API, called through dlopen so they are a run-time option, not a build dependency.
#include "graft_plots.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint32_t domain; int code; char *message; } GErrorLike;
typedef struct { double x, y, width, height; } RsvgRectangleLike;

static struct {
    void *(*handle_new_from_data)(const unsigned char *, size_t, GErrorLike **);
    int (*render_document)(void *, void *, const RsvgRectangleLike *, GErrorLike **);
    void (*object_unref)(void *);
    void (*error_free)(GErrorLike *);
    void *(*image_surface_create)(int, int, int);
    void *(*create)(void *);
    void (*destroy)(void *);
    void (*surface_destroy)(void *);
    int (*write_to_png_stream)(void *, int (*)(void *, const unsigned char *, unsigned int), void *);
    int (*surface_status)(void *);
    const char *missing;
} api;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *symbol(void *lib, const char *name) {
    void *f = lib ? dlsym(lib, name) : NULL;
    if (!f && !api.missing) api.missing = name;
    return f;
}

static void load(void) {
    void *rsvg = dlopen("librsvg-2.so.2", RTLD_NOW | RTLD_LOCAL);
    void *cairo = dlopen("libcairo.so.2", RTLD_NOW | RTLD_LOCAL);
    void *gobject = dlopen("libgobject-2.0.so.0", RTLD_NOW | RTLD_LOCAL);
    void *glib = dlopen("libglib-2.0.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!rsvg) { api.missing = "librsvg-2.so.2 (Debian package librsvg2-2)"; return; }
    if (!cairo) { api.missing = "libcairo.so.2 (Debian package libcairo2)"; return; }
    *(void **)&api.handle_new_from_data = symbol(rsvg, "rsvg_handle_new_from_data");
    *(void **)&api.render_document = symbol(rsvg, "rsvg_handle_render_document");
    *(void **)&api.object_unref = symbol(gobject, "g_object_unref");
    *(void **)&api.error_free = symbol(glib, "g_error_free");
    *(void **)&api.image_surface_create = symbol(cairo, "cairo_image_surface_create");
    *(void **)&api.create = symbol(cairo, "cairo_create");
    *(void **)&api.destroy = symbol(cairo, "cairo_destroy");
    *(void **)&api.surface_destroy = symbol(cairo, "cairo_surface_destroy");
    *(void **)&api.write_to_png_stream = symbol(cairo, "cairo_surface_write_to_png_stream");
    *(void **)&api.surface_status = symbol(cairo, "cairo_surface_status");
}

typedef struct { unsigned char *data; size_t length, capacity; int failed; } Buffer;

static int append(void *closure, const unsigned char *bytes, unsigned int n) {
    Buffer *b = closure;
    if (b->length + n > b->capacity) {
        size_t capacity = (b->length + n) * 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) { b->failed = 1; return 11; }   // CAIRO_STATUS_WRITE_ERROR
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, bytes, n);
    b->length += n;
    return 0;
}

int graft_svg_to_png(const char *svg, size_t length, int width, int height, unsigned char **png, size_t *png_length,
                     char *error, size_t error_length) {
    pthread_once(&once, load);
    if (api.missing) { snprintf(error, error_length, "no SVG renderer: %s is missing", api.missing); return -1; }
    if (width <= 0 || height <= 0 || width > 8192 || height > 8192) { snprintf(error, error_length, "bad size %dx%d", width, height); return -1; }
    GErrorLike *gerror = NULL;
    void *handle = api.handle_new_from_data((const unsigned char *)svg, length, &gerror);
    if (!handle) {
        snprintf(error, error_length, "librsvg cannot read the SVG (%s)", gerror && gerror->message ? gerror->message : "?");
        if (gerror) api.error_free(gerror);
        return -1;
    }
    void *surface = api.image_surface_create(0 /* CAIRO_FORMAT_ARGB32 */, width, height);
    void *cr = api.create(surface);
    RsvgRectangleLike viewport = {0, 0, width, height};
    int ok = api.render_document(handle, cr, &viewport, &gerror);
    api.destroy(cr);
    api.object_unref(handle);
    if (!ok) {
        snprintf(error, error_length, "librsvg cannot render the SVG (%s)", gerror && gerror->message ? gerror->message : "?");
        if (gerror) api.error_free(gerror);
        api.surface_destroy(surface);
        return -1;
    }
    Buffer b = {0};
    int status = api.write_to_png_stream(surface, append, &b);
    api.surface_destroy(surface);
    if (status != 0 || b.failed) {
        free(b.data);
        snprintf(error, error_length, "cairo cannot encode the PNG (status %d)", status);
        return -1;
    }
    *png = b.data;
    *png_length = b.length;
    return 0;
}

void graft_plots_free(unsigned char *png) { free(png); }
