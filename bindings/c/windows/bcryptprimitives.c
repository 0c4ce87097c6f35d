/*
 * Stand-in for Windows' bcryptprimitives.dll, for running the harness under wine 8 (Debian 12),
 * which lacks the DLL. Rust's standard library imports one function from it, ProcessPrng
 * (random HashMap keys); this forwards to RtlGenRandom (advapi32's SystemFunction036), which
 * wine has. Real Windows (10 and later) ships the DLL; this file is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
