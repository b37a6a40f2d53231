// The file of the loaded image (shared object or executable) holding an address: how libullme finds
// the files installed beside it (the default adapter). dladdr needs _GNU_SOURCE, which Swift's Glibc
// module does not define, hence this shim.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include "cullme.h"

int cullme_image_path(const void *addr, char *buf, size_t cap) {
    Dl_info info;
    if (cap == 0) return -1;
    if (dladdr(addr, &info) && info.dli_fname && info.dli_fname[0] == '/') {
        return snprintf(buf, cap, "%s", info.dli_fname) < (int)cap ? 0 : -1;
    }
    // The main executable may be reported by its bare name: ask the kernel.
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) return -1;
    buf[n] = 0;
    return 0;
}
