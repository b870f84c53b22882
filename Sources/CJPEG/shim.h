#include <stdio.h>   /* jpeglib.h needs FILE and size_t first */
#include <stddef.h>
#include <jpeglib.h>
#include <jerror.h>
