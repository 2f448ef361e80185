// SPDX-License-Identifier: MIT
/*
 * Stand-ins for the GnuTLS functions Debian's static libmicrohttpd.a
 * references (it is built with HTTPS support).  isola never passes
 * MHD_USE_TLS, so MHD never calls them; GnuTLS has no complete static build
 * on Debian (p11-kit, libunistring), and a dynamic GnuTLS would cost every
 * VMM start its constructors.  Linked into the static build/isola only
 * (see the Makefile); if one is ever reached, that is a bug: abort.
 * Only the library's constructor and destructor (MHD_init/MHD_fini) call
 * GnuTLS unconditionally: gnutls_global_init/deinit succeed and do nothing.
 * The list: nm libmicrohttpd.a | grep ' U gnutls_'.
 */
#include <stdlib.h>

int gnutls_global_init(void);
int gnutls_global_init(void)
{
	return 0;
}

void gnutls_global_deinit(void);
void gnutls_global_deinit(void)
{
}

#define MHD_NOTLS(name)                                                                            \
	void name(void);                                                                           \
	void name(void)                                                                            \
	{                                                                                          \
		abort();                                                                           \
	}

MHD_NOTLS(gnutls_alpn_set_protocols)
MHD_NOTLS(gnutls_bye)
MHD_NOTLS(gnutls_certificate_allocate_credentials)
MHD_NOTLS(gnutls_certificate_free_credentials)
MHD_NOTLS(gnutls_certificate_server_set_request)
MHD_NOTLS(gnutls_certificate_set_dh_params)
MHD_NOTLS(gnutls_certificate_set_retrieve_function2)
MHD_NOTLS(gnutls_certificate_set_retrieve_function3)
MHD_NOTLS(gnutls_certificate_set_x509_key_mem)
MHD_NOTLS(gnutls_certificate_set_x509_key_mem2)
MHD_NOTLS(gnutls_certificate_set_x509_trust_mem)
MHD_NOTLS(gnutls_cipher_get)
MHD_NOTLS(gnutls_credentials_set)
MHD_NOTLS(gnutls_deinit)
MHD_NOTLS(gnutls_dh_params_deinit)
MHD_NOTLS(gnutls_dh_params_import_pkcs3)
MHD_NOTLS(gnutls_dh_params_init)
MHD_NOTLS(gnutls_handshake)
MHD_NOTLS(gnutls_init)
MHD_NOTLS(gnutls_malloc)
MHD_NOTLS(gnutls_priority_deinit)
MHD_NOTLS(gnutls_priority_init)
MHD_NOTLS(gnutls_priority_set)
MHD_NOTLS(gnutls_protocol_get_version)
MHD_NOTLS(gnutls_psk_allocate_server_credentials)
MHD_NOTLS(gnutls_psk_free_server_credentials)
MHD_NOTLS(gnutls_psk_set_server_credentials_function)
MHD_NOTLS(gnutls_record_check_pending)
MHD_NOTLS(gnutls_record_get_direction)
MHD_NOTLS(gnutls_record_recv)
MHD_NOTLS(gnutls_record_send)
MHD_NOTLS(gnutls_session_get_ptr)
MHD_NOTLS(gnutls_session_set_ptr)
MHD_NOTLS(gnutls_strerror)
MHD_NOTLS(gnutls_transport_set_int2)
