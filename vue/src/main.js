import { createApp } from 'vue';

import App from './App.vue';
import { pickLocale } from './i18n.js';

// The page speaks the browser's preferred language among Spanish and English, Spanish otherwise.
const locale = pickLocale(navigator.languages?.length ? navigator.languages : [navigator.language]);
document.documentElement.lang = locale;
createApp(App, { locale }).mount('#app');
