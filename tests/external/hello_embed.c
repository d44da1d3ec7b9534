/* hello_embed.c -- a user program of the installed embedding client: it
 * must compile and link against libresonance_embed alone (pkg-config), and
 * refuse options without a URL with the documented status. */
#include <resonance_embed.h>
#include <stdio.h>

int main(void) {
  rsn_embedder_opts o;
  rsn_embedder *e = NULL;
  rsn_embedder_opts_init(&o);
  rsn_status st = rsn_embedder_open(&o, &e);
  printf("provider=%s open=%s\n", rsn_embed_provider_name(o.provider),
         rsn_status_name(st));
  return st == RSN_E_INVAL && e == NULL ? 0 : 1;
}
