#ifndef IMAPD_VERSION_H
#define IMAPD_VERSION_H

#define IMAPD_VERSION	"0.1"

#endif
