"""The shared VM harness: qemu runner, a cached Debian root, and OS-disk builders."""
