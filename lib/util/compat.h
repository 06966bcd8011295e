/* Compiler helpers shared by every module. */
#ifndef POSTERN_COMPAT_H
#define POSTERN_COMPAT_H

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN _Noreturn
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))

#endif
