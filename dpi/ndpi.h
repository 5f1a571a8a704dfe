#pragma once

// The one place nDPI's C headers are included: they are not C++-clean and need extern "C".
extern "C" {
#include <ndpi/ndpi_api.h>
}
