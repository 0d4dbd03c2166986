#include "celf_shim.h"
