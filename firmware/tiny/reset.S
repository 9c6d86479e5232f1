/* The smallest guest: reset the machine through the i8042 at once.
 * Measures a VMM's start-up and tear-down (scripts/bench). Loaded at 0x8000, real mode. */
    .code16
    .globl start
start:
    mov $0xfe, %al
    out %al, $0x64
1:  hlt
    jmp 1b
