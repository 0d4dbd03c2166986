#include "cmhd.h"
