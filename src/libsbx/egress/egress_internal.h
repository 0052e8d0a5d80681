/* egress/egress_internal.h - what policy.c, scope.c and nft.c share.  */
#ifndef SBX_EGRESS_INTERNAL_H
#define SBX_EGRESS_INTERNAL_H

#include "egress/egress.h"

struct sbx_net_policy
{
  sbx_net_egress_mode egress;
  sbx_net_dns_mode dns;
  sbx_net_rule *rules;
  size_t nrules;
  sbx_net_rule *resolvers;
  size_t nresolvers;
  char *resolved; /* JSON object text, or NULL */
};

/* s without leading and trailing white space, malloc'd.  */
char *sbx_net_trimmed (const char *s);

#endif
