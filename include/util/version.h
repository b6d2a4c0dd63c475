/* gilprobe's version: --version, the speedscope exporter, the man page's
 * title and the Debian package (the Makefile reads it from here). */
#ifndef GILPROBE_VERSION_H
#define GILPROBE_VERSION_H

#define GILPROBE_VERSION "0.1.0"

#endif
