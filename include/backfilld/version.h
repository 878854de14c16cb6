/* version.h - the release of backfilld, printed by --version and in the startup line. */
#ifndef BACKFILLD_VERSION_H
#define BACKFILLD_VERSION_H

#define BF_VERSION "0.1.0"

#endif
