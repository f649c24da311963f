// Debian's libqrencode (libqrencode-dev): QR code symbols for pcsh setup's enrolment URI.
#include <qrencode.h>
