# pcnet-core learning on an emulated Cortex-M4F (QEMU mps2-an386) and RV32IMAC (QEMU virt):
# both images must learn, agree with the host's run of the same code epoch by epoch, save
# and reload their model identically, and keep one learning step's stack within 2 KiB;
# then the budget build (no printing, opt-level s) is measured. About 1-2 min on 2 cores.
bash firmware/check.sh
