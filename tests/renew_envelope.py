"""renew_envelope.py FILE: after editing a kprior HDF5 file (checkpoint, model.h5) with h5py,
rewrite its 512-byte envelope header (body size, CRC-32 of the body) as the library writes it,
so that the tests can make a file look as an older kprior wrote it."""
import sys
import zlib


def renew(path):
    with open(path, "r+b") as f:
        header = f.read(512).split(b"\0")[0].decode().splitlines()
        body = f.read()
        fields = dict(line.split(" ", 1) for line in header[1:])
        fields["body_bytes"], fields["crc32"] = str(len(body)), str(zlib.crc32(body))
        keys = ("format_version", "body_bytes", "crc32", "producer")
        text = header[0] + "".join("\n%s %s" % (k, fields[k]) for k in keys) + "\n"
        f.seek(0)
        f.write(text.encode().ljust(512, b"\0"))


if __name__ == "__main__":
    renew(sys.argv[1])
