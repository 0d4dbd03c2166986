#ifndef CELF_SHIM_H
#define CELF_SHIM_H
#include <gelf.h>

/* gelf.h defines these as macros; Swift cannot call macros. */
static inline unsigned char celf_st_type(unsigned char info) { return GELF_ST_TYPE(info); }
static inline unsigned char celf_st_bind(unsigned char info) { return GELF_ST_BIND(info); }
static inline unsigned char celf_st_visibility(unsigned char other) { return GELF_ST_VISIBILITY(other); }
static inline unsigned long celf_r_sym(unsigned long info) { return GELF_R_SYM(info); }
static inline unsigned long celf_r_type(unsigned long info) { return GELF_R_TYPE(info); }

#endif
