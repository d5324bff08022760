// Module customization hooks (node:module register) for the bench's Gatehouse process: the one
// import of 'oidc-provider' made by Gatehouse's compiled src/oidc/provider.js resolves to
// provider-shim.ts instead. Every other import is untouched. Registered by gatehouse-child.ts.
let providerModuleUrl;
let shimUrl;

export async function initialize(data) {
  providerModuleUrl = data.providerModuleUrl;
  shimUrl = data.shimUrl;
}

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'oidc-provider' && context.parentURL === providerModuleUrl) {
    // Resolved through the rest of the chain, so tsx (registered before) loads the TypeScript.
    return nextResolve(shimUrl, context);
  }
  return nextResolve(specifier, context);
}
