// Native modules that have no JavaScript half under Jest.
jest.mock('react-native-webrtc', () => ({
  RTCPeerConnection: jest.fn(),
  RTCView: () => null,
  mediaDevices: { getUserMedia: jest.fn(() => Promise.reject(new Error('no camera in tests'))) },
}));

jest.mock('expo-secure-store', () => {
  const store = new Map();
  return {
    getItemAsync: jest.fn(async (k) => (store.has(k) ? store.get(k) : null)),
    setItemAsync: jest.fn(async (k, v) => void store.set(k, v)),
    deleteItemAsync: jest.fn(async (k) => void store.delete(k)),
  };
});

jest.mock('expo-crypto', () => {
  let n = 0;
  return {
    randomUUID: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
  };
});

jest.mock('expo-notifications', () => ({
  setNotificationHandler: jest.fn(),
  addNotificationResponseReceivedListener: jest.fn(() => ({ remove: jest.fn() })),
  getLastNotificationResponseAsync: jest.fn(async () => null),
  getPermissionsAsync: jest.fn(async () => ({ granted: false, canAskAgain: false })),
  requestPermissionsAsync: jest.fn(async () => ({ granted: false })),
  getExpoPushTokenAsync: jest.fn(),
  setNotificationChannelAsync: jest.fn(),
  AndroidImportance: { MAX: 5, HIGH: 4 },
}));

jest.mock('expo-device', () => ({ __esModule: true, isDevice: false }));

// expo-router without a navigator: the router's calls are recorded, the
// params are set by the test, and a Stack.Screen renders its header's
// buttons so that tests can press them.
jest.mock('expo-router', () => {
  const React = require('react');
  const { Text, View } = require('react-native');
  const router = {
    push: jest.fn(),
    replace: jest.fn(),
    back: jest.fn(),
    canGoBack: jest.fn(() => true),
  };
  const state = { params: {} };
  const Screen = ({ options }) =>
    options && options.headerRight ? React.createElement(View, null, options.headerRight({})) : null;
  const Navigator = ({ children }) => React.createElement(View, null, children);
  Navigator.Screen = Screen;
  return {
    __router: router,
    __state: state,
    router,
    useRouter: () => router,
    useLocalSearchParams: () => state.params,
    Link: ({ href, children, ...p }) =>
      React.createElement(Text, { ...p, accessibilityRole: 'link', onPress: () => router.push(href) }, children),
    Redirect: ({ href }) => React.createElement(Text, null, `redirect:${href}`),
    Stack: Navigator,
    Tabs: Navigator,
  };
});
