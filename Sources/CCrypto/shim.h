// OpenSSL's libcrypto (Debian's libssl-dev): SHA-256 of checkpoints, through the EVP digest interface.
#include <openssl/evp.h>
