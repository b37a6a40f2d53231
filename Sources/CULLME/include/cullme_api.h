#ifndef CULLME_API_H
#define CULLME_API_H
/* Lets the Swift side see the public C types (params structs, enums) from the one stable header. */
#include "../../../include/ullme.h"
#endif
