/* A tiny guest that enters 64-bit long mode by itself, then:
 *   1. executes int3 at CPL 0 with a #BP handler that prints 'B' (on hosts whose KVM
 *      emulates kernel code, the emulator cannot run int3: svm completes it);
 *   2. prints 'L';
 *   3. drops to CPL 3 and performs EXIT_COUNT MMIO writes (exits svm answers and drops),
 *   4. returns to ring 0 through #UD (ud2), whose handler prints 'U' and resets.
 * Loaded at 0x8000 and entered in real mode (svm boot --firmware). Output: "BLU".
 * EXIT_COUNT is the little-endian u64 at offset 8 of the binary (0 unless patched). */
    .code16
    .globl start
start:
    jmp real_start
    /* At a fixed offset (8) so tests and benchmarks can patch it into the binary. */
    .balign 8
    .globl exit_count
exit_count:
    .quad 0
real_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7000, %sp

    /* Page tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD): identity map of the
     * first 1 GiB with 2 MiB pages, user-accessible so ring 3 can run here too. */
    mov $0x1000, %di
    xor %ax, %ax
    mov $0x1800, %cx            /* zero 3 pages (0x3000 bytes = 0x1800 words) */
    cld
    rep stosw
    movl $0x2007, 0x1000        /* PML4[0] -> PDPT, present|rw|user */
    movl $0x3007, 0x2000        /* PDPT[0] -> PD */
    mov $0x3000, %di
    xor %ebx, %ebx
    mov $512, %cx
1:  mov %ebx, %eax
    or $0x87, %eax              /* present|rw|user|2MiB */
    mov %eax, (%di)
    add $0x200000, %ebx
    add $8, %di
    loop 1b

    lgdtl gdt_descriptor
    mov $0x1000, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax              /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx       /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG|PE */
    mov %eax, %cr0
    ljmpl $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7000, %rsp

    /* TSS: RSP0 for traps from ring 3. */
    lea tss(%rip), %rax
    mov $0x7000, %rcx
    mov %rcx, 4(%rax)
    mov %rax, %rdx              /* fill the TSS descriptor's base */
    lea gdt_tss(%rip), %rdi
    mov %dx, 2(%rdi)
    shr $16, %rdx
    mov %dl, 4(%rdi)
    mov %dh, 7(%rdi)
    shr $16, %rdx
    mov %edx, 8(%rdi)
    mov $0x28, %ax
    ltr %ax

    /* Every exception vector 0-31 -> a stub that prints 'a'+vector and stops. */
    lea idt(%rip), %rdi
    lea fault_stubs(%rip), %rax
    xor %ecx, %ecx
4:  mov %rax, %rbx
    mov %bx, (%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    shr $16, %rbx
    mov %bx, 6(%rdi)
    add $16, %rdi
    add $16, %rax
    inc %ecx
    cmp $32, %ecx
    jne 4b

    /* IDT entry 3 -> bp_handler (interrupt gate, DPL 0). */
    lea idt(%rip), %rdi
    lea bp_handler(%rip), %rax
    mov %ax, 3*16(%rdi)
    movw $0x08, 3*16+2(%rdi)
    movw $0x8e00, 3*16+4(%rdi)
    shr $16, %rax
    mov %ax, 3*16+6(%rdi)
    /* IDT entry 6 (#UD) -> ud_handler: how ring 3 ends the test. */
    lea idt(%rip), %rdi
    lea ud_handler(%rip), %rax
    mov %ax, 6*16(%rdi)
    shr $16, %rax
    mov %ax, 6*16+6(%rdi)
    lidt idt_descriptor(%rip)

    mov $0x3f8, %dx
    int3                        /* -> 'B' */
    mov $'L', %al
    out %al, %dx

    /* To ring 3 with IOPL 3 (RFLAGS bits 12-13). */
    pushq $0x23                 /* user data selector | RPL 3 */
    pushq $0x6000               /* user stack */
    pushq $0x3002               /* RFLAGS: IOPL 3, reserved bit 1 */
    pushq $0x1b                 /* user code selector | RPL 3 */
    lea user(%rip), %rax
    push %rax
    iretq

user:
    /* EXIT_COUNT MMIO writes to an address that is neither RAM nor a device: each one
     * is an exit svm handles and drops. (Port I/O from ring 3 raises #GP on hosts that
     * run guest user code natively in the host's ring 3, whatever IOPL says.) */
    mov exit_count(%rip), %rcx
    test %rcx, %rcx
    jz 2f
    mov $0x3ff00000, %rdi
1:  movl %ecx, (%rdi)
    dec %rcx
    jnz 1b
    /* Back to ring 0 through an exception (int $n from ring 3 is #UD there too). */
2:  ud2

ud_handler:
    mov $0x3f8, %dx
    mov $'U', %al
    out %al, %dx
    mov $0xfe, %al
    out %al, $0x64
3:  hlt
    jmp 3b

bp_handler:
    push %rax
    mov $'B', %al
    out %al, %dx
    pop %rax
    iretq

    .balign 16
fault_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 16
    mov $0x3f8, %dx
    mov $('a'+\v), %al
    out %al, %dx
    jmp fault_stop
    .endr
fault_stop:
    mov $'!', %al
    out %al, %dx
    hlt
    jmp fault_stop


    .balign 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff    /* 0x10 kernel data */
    .quad 0x00affa000000ffff    /* 0x18 user code, 64-bit, DPL 3 */
    .quad 0x00cff2000000ffff    /* 0x20 user data, DPL 3 */
gdt_tss:
    .quad 0x0000890000000067    /* 0x28 TSS (base filled in at run time) */
    .quad 0
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .balign 16
tss:
    .fill 104, 1, 0
idt_descriptor:
    .word 256*16 - 1
    .quad idt
    .balign 16
idt:
    .fill 256*16, 1, 0
